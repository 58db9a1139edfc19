package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.engine.Engine;
import io.tidemark.engine.EngineConfig;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.DemoGuest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * "Snapshot before you deploy" on real parts: the CLI signs a pre-deploy hook, the engine's HTTP
 * endpoint submits jobs over Kafka, the worker captures the running QEMU VM, the replicator ships it to
 * S3, and the CLI exits 0 only once the point is replicated. The same hook again yields no new
 * restore point; a wrong secret is refused and enqueues nothing.
 */
class PreDeployHookIT {

    private static final String VM = "shop-vm";
    private static final long DISK = 16L << 20;

    @TempDir
    Path dir;

    @Test
    void aPipelineWaitsForItsSnapshotAndIsStoppedWhenTheHookIsRefused() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                QemuVm vm = QemuVm.start(qmpDir, VM, DISK)) {
            s3.createBucket("offsite");
            String disk = vm.diskIds().get(0);
            DemoGuest guest = new DemoGuest(vm, Map.of(disk, DISK), 11);
            guest.write(disk, 1 << 20, 1 << 20, 0x5a);
            Path policies = Files.createDirectories(dir.resolve("policies"));
            Files.writeString(
                    policies.resolve("shop.yaml"),
                    """
                    name: shop
                    vms: {names: [%s]}
                    schedule: {interval: 1h}
                    rpo: 2h
                    targets: [offsite]
                    triggers:
                      pre-deploy:
                        apps: [shop]
                    """
                            .formatted(VM));
            Path secrets = Files.createDirectories(dir.resolve("secrets"));
            Files.writeString(secrets.resolve("s3.access"), s3.accessKey());
            Files.writeString(secrets.resolve("s3.secret"), s3.secretKey());
            Path hookSecret = secrets.resolve("hook.secret");
            Files.writeString(hookSecret, "a-long-enough-shared-hook-secret");
            Path wrongSecret = secrets.resolve("wrong.secret");
            Files.writeString(wrongSecret, "not-the-secret-the-engine-knows");
            Path configFile = dir.resolve("tidemark.yaml");
            Files.writeString(
                    configFile,
                    """
                    host: hv1
                    data: %s
                    qmpDir: %s
                    policies: %s
                    hooks:
                      address: 127.0.0.1:0
                      secretFile: %s
                    targets:
                      offsite:
                        type: s3
                        endpoint: %s
                        region: us-east-1
                        bucket: offsite
                        pathStyle: true
                        accessKeyFile: %s
                        secretKeyFile: %s
                    """
                            .formatted(
                                    dir.resolve("data"),
                                    qmpDir,
                                    policies,
                                    hookSecret,
                                    s3.endpoint(),
                                    secrets.resolve("s3.access"),
                                    secrets.resolve("s3.secret")));

            try (Engine engine = Engine.start(EngineConfig.load(configFile), guest, Clock.systemUTC())) {
                String url = "http://127.0.0.1:" + engine.hookPort().orElseThrow();
                // the schedule's first firing takes the first point; wait for it so the hook's is the next
                await().atMost(Duration.ofSeconds(60))
                        .until(() -> !engine.repository().manifests(VM).isEmpty());
                guest.scatter(2);

                String[] hook = {
                    "hook",
                    "pre-deploy",
                    "--app",
                    "shop",
                    "--commit",
                    "4f2a9c1",
                    "--pipeline",
                    "ci-812",
                    "--wait",
                    "replicated",
                    "--timeout",
                    "2m",
                    "--url",
                    url,
                    "--secret-file",
                    hookSecret.toString()
                };
                Run first = run(hook);
                assertThat(first.exit()).as(first.err()).isZero();
                List<Manifest> tagged = hookPoints(engine);
                assertThat(tagged).singleElement().satisfies(m -> {
                    assertThat(m.trigger().attributes())
                            .containsEntry("app", "shop")
                            .containsEntry("commit", "4f2a9c1")
                            .containsEntry("pipeline", "ci-812");
                    assertThat(m.incremental()).isTrue();
                });
                assertThat(first.out()).contains(tagged.get(0).id());

                // the same hook again (a retried pipeline step): success, and still one restore point
                Run again = run(hook);
                assertThat(again.exit()).as(again.err()).isZero();
                assertThat(hookPoints(engine)).hasSize(1);

                // a wrong secret: refused, exit 2, nothing enqueued
                int before = engine.repository().manifests(VM).size();
                hook[hook.length - 1] = wrongSecret.toString();
                hook[5] = "77e0b3d";
                Run refused = run(hook);
                assertThat(refused.exit()).isEqualTo(2);
                assertThat(refused.err()).contains("refused the signature");
                assertThat(engine.repository().manifests(VM)).hasSize(before);
            }
        }
    }

    private static List<Manifest> hookPoints(Engine engine) {
        return engine.repository().manifests(VM).stream()
                .filter(m -> m.trigger().is(TriggerKind.HOOK))
                .toList();
    }

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private record Run(int exit, String out, String err) {}

    private Run run(String... args) {
        std.reset();
        int exit = Main.execute(args);
        return new Run(exit, std.out(), std.err());
    }
}

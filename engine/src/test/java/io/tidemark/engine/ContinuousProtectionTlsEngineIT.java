package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.qemu.TestPki;
import io.tidemark.workers.CaptureHooks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code mode: continuous} policy with {@code dr.tls}, applied by the running engine: the VM's
 * disk is mirrored over NBD with TLS (x509, a throwaway CA made by openssl) to a real {@code
 * qemu-storage-daemon} whose server requires TLS, and removing the policy stops the mirror and
 * removes the credentials object from the VM's QEMU.
 */
class ContinuousProtectionTlsEngineIT {

    private static final long MIB = 1 << 20;
    private static final Duration DEADLINE = Duration.ofSeconds(180);

    @TempDir
    Path dir;

    @Test
    void aPolicyWithDrTlsMirrorsThroughTls() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path drDir = Files.createDirectories(dir.resolve("dr"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        TestPki pki = TestPki.create(dir.resolve("pki"));
        EngineConfig config = EngineConfig.builder()
                .host("hv-cdp")
                .data(dir.resolve("data"))
                .qmpDir(qmpDir)
                .policies(policies)
                .build();

        try (QemuVm vm = QemuVm.start(qmpDir, "db-1", 16L * MIB)) {
            String disk = vm.diskIds().get(0);
            try (DrNbdSite dr = DrNbdSite.startTcpTls(drDir, "db-1-" + disk, 16L * MIB, pki)) {
                String port = dr.uri().replaceFirst("^nbd://127\\.0\\.0\\.1:(\\d+)/.*$", "$1");
                Files.writeString(
                        policies.resolve("db.yaml"),
                        """
                        name: db
                        vms: {globs: ["db-*"]}
                        schedule: {interval: 10s}
                        rpo: 2s
                        mode: continuous
                        dr:
                          nbd: "nbd://127.0.0.1:%s/{vm}-{disk}"
                          tls: {dir: "%s", hostname: localhost}
                        """
                                .formatted(port, pki.clientDir()));
                try (Engine engine = Engine.start(config, CaptureHooks.NONE, Clock.systemUTC())) {
                    ContinuousMirrors mirrors = engine.continuousMirrors().orElseThrow();
                    await().atMost(DEADLINE)
                            .until(() -> mirrors.states().stream().anyMatch(s -> s.vm().equals("db-1") && s.inSync()));
                    vm.write(disk, MIB, 64 * 1024, 0x3c);
                    assertThat(dr.sha256()).isEqualTo(vm.model(disk).sha256());
                    assertThat(objects(vm)).anyMatch(o -> o.startsWith("tm-dr-tls-"));

                    Files.delete(policies.resolve("db.yaml"));
                    await().atMost(DEADLINE).until(() -> mirrors.protectedVms().isEmpty());
                    // unprotected means the mirror has ended in QEMU and its TLS object is gone
                    assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
                    assertThat(objects(vm)).noneMatch(o -> o.startsWith("tm-dr-tls-"));
                }
            }
        }
    }

    private static List<String> objects(QemuVm vm) {
        List<String> names = new ArrayList<>();
        for (JsonNode o : vm.qmp("qom-list", QemuVm.args().put("path", "/objects"))) {
            names.add(o.path("name").asText());
        }
        return names;
    }
}

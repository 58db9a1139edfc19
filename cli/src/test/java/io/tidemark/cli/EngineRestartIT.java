package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.repository.Manifest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.qemu.QemuVm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restart is the normal case: {@code tidemark run} as its own process, on real QEMU and its embedded
 * Kafka broker, stopped by SIGTERM and by SIGKILL and started again on the same data directory, keeps
 * protecting the VM each time, drains on SIGTERM and leaves no scratch behind.
 */
class EngineRestartIT {

    private static final String VM = "vm1";

    @TempDir
    Path dir;

    @Test
    void theEngineRestartsOnItsOwnDataAfterSigtermAndSigkill() throws Exception {
        Path qmp = Files.createDirectories(dir.resolve("q"));
        Path data = dir.resolve("data");
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("p.yaml"),
                """
                name: every-10s
                vms:
                  names: [vm1]
                schedule:
                  interval: 10s
                rpo: 1h
                targets: []
                """);
        Path config = dir.resolve("tidemark.yaml");
        Files.writeString(
                config,
                "host: h1\ndata: " + data + "\nqmpDir: " + qmp + "\npolicies: " + policies
                        + "\nmetrics: \"127.0.0.1:0\"\n");

        try (QemuVm vm = QemuVm.start(qmp, VM, 16L << 20)) {
            List<String> stops = List.of("TERM", "KILL", "KILL", "TERM", "TERM");
            int pattern = 1;
            for (String signal : stops) {
                int before = points(data).size();
                vm.write("sd0", (pattern % 16) * 65536L, 65536, pattern);
                pattern++;
                Path engineLog = dir.resolve("engine-" + pattern + ".log");
                Process engine = start(config, engineLog);
                try {
                    // a new restore point proves the whole chain came back: broker, scheduler, worker
                    await().atMost(Duration.ofSeconds(180))
                            .pollInterval(Duration.ofMillis(500))
                            .failFast(() -> assertThat(engine.isAlive())
                                    .as("the engine exited; its output:%n%s", Files.readString(engineLog))
                                    .isTrue())
                            .until(() -> points(data).size() > before);
                } finally {
                    if (signal.equals("TERM")) {
                        engine.destroy();
                    } else {
                        engine.destroyForcibly();
                    }
                }
                assertThat(engine.waitFor(120, java.util.concurrent.TimeUnit.SECONDS))
                        .as("engine stopped after SIG%s", signal)
                        .isTrue();
                String log = Files.readString(engineLog);
                if (signal.equals("TERM")) {
                    assertThat(log).as("drained on SIGTERM").contains("tidemark: stopped");
                    // a drained engine leaves no scratch: a SIGKILL's leftovers were removed at the start
                    assertThat(filesUnder(data.resolve("work"))).isEmpty();
                }
            }
            List<Manifest> all = points(data);
            assertThat(all).hasSizeGreaterThanOrEqualTo(stops.size());
            assertThat(all.stream().map(Manifest::jobId).distinct().count()).isEqualTo(all.size());
        }
    }

    private static Process start(Path config, Path log) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx512m",
                        // C1 only and the serial GC, as the soak's and the topology's engines: a short-lived engine
                        // JVM then starts in far less CPU (13-28 s instead of 37-40 s to 'running' at load 30-40)
                        "-XX:+UseSerialGC",
                        "-XX:TieredStopAtLevel=1",
                        "-cp",
                        System.getProperty("java.class.path"),
                        Main.class.getName(),
                        "run",
                        "--config",
                        config.toString())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile());
        return pb.start();
    }

    private static List<Manifest> points(Path data) {
        Path repo = data.resolve("repo");
        if (!Files.isDirectory(repo)) {
            return List.of();
        }
        try (FileObjectTarget target = new FileObjectTarget(repo)) {
            if (!target.exists(ObjectKeys.CONFIG)) {
                return List.of(); // the engine has not created its repository yet
            }
            return Repository.open(target).manifests(VM);
        }
    }

    private static List<Path> filesUnder(Path root) throws IOException {
        if (!Files.exists(root)) {
            return List.of();
        }
        try (Stream<Path> walk = Files.walk(root)) {
            return new ArrayList<>(walk.filter(Files::isRegularFile).toList());
        }
    }
}

package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.demo.bench.Soak;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The short variant of the day-two soak ({@code tidemark bench soak}) in CI: 10 engine
 * SIGTERMs/SIGKILLs at random moments (capture, export, just after a commit, replication, gc, the
 * embedded broker), a target down for longer than its retry deadline, a VM SIGSTOPped, a QMP socket
 * moved away and back and a manifest truncated, on real parts (engine child JVM with its embedded
 * broker, QEMU under TCG, S3Proxy). Every check of the soak must pass: one restore point or a
 * JobFailed with a reason per firing, no half-visible point, every point on the target, bit-identical
 * restores from both, an RpoViolated for every missed RPO, nothing left behind.
 */
class SoakIT {

    @Test
    void tenKillsAndEveryFaultLeaveEveryPointWholeEverywhere() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "tm-soakit-");
        Soak.Options options = new Soak.Options(
                dir,
                10,
                Duration.ZERO,
                3,
                8L << 20,
                Duration.ofSeconds(10), // the shortest interval a policy may have
                Duration.ofSeconds(30),
                Duration.ofSeconds(5),
                Long.getLong("soak.seed", 7L),
                Duration.ofSeconds(30),
                false); // the lag baseline is a bench figure; 65 s the suite does not need
        Soak.Result r = new Soak(options, line -> System.out.println("soak: " + line)).run();
        SoakCommand.print(r.figures(), System.out);
        assertThat(r.figures().path("kills").asInt()).isGreaterThanOrEqualTo(10);
        assertThat(r.figures().path("points").path("primary").asInt()).isPositive();
        assertThat(r.failures())
                .as("soak checks (engine logs under %s)", dir.resolve("logs"))
                .isEmpty();
        io.tidemark.core.files.FileTrees.delete(dir);
    }
}

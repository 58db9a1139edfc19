package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.cli.Main;
import io.tidemark.format.Json;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark bench} at tiny sizes, with the real qemu-nbd, nbdcopy and restic: the figures are consistent. */
class BenchCommandIT {

    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void aTinyRunPrintsEveryScenarioWithConsistentFigures() throws Exception {
        Path work = dir.resolve("b");
        int code = Main.execute(
                "bench",
                "--image-size",
                "32MiB",
                "--large-size",
                "512MiB",
                "--clones",
                "3",
                "--clone-size",
                "8MiB",
                "--dir",
                work.toString(),
                "--json");
        assertThat(code).as(std.err()).isZero();
        String out = std.out();
        JsonNode r = Json.mapper().readTree(out.substring(out.indexOf("\n{") + 1)); // after the test's log lines

        JsonNode full = r.path("full");
        assertThat(full.path("bytesRead").asLong()).isEqualTo(32 * MIB);
        // about half the test image is zeros, which are never stored
        long random = r.path("image").path("randomMiB").asLong() * MIB;
        assertThat(full.path("bytesNew").asLong()).isEqualTo(random);
        assertThat(full.path("throughputVsNbdcopy").asDouble()).isPositive();
        // CPU against zstd -1 + sha256sum on the same non-zero bytes, the process's RSS, a named skip
        assertThat(full.path("nonZeroBytes").asLong()).isEqualTo(random);
        assertThat(full.path("cpuVsZstdSha256").asDouble()).isPositive();
        assertThat(full.path("zstdSha256CpuSecondsPerGB").asDouble()).isPositive();
        assertThat(full.path("processRssPeakMiB").asLong()).isPositive();
        // borg's first backup of the same raw image (deploy/install-deps.sh installs borgbackup)
        assertThat(full.path("borg").asText()).startsWith("borg 1.");
        assertThat(full.path("borgSeconds").asDouble()).isPositive();
        assertThat(full.path("borgBytesWritten").asLong()).isPositive();
        assertThat(full.path("throughputVsBorg").asDouble()).isPositive();
        assertThat(r.path("loadAverageAtStart").asText()).matches("[0-9.]+ [0-9.]+ [0-9.]+");

        // guest impact: writes through a running VM's disk with and without a backup, same run
        JsonNode guest = r.path("guest");
        assertThat(guest.path("diskBytes").asLong()).isEqualTo(32 * MIB);
        assertThat(guest.path("noBackup").path("writes").asInt()).isEqualTo(600); // before, between, after
        assertThat(guest.path("duringBackup").path("writes").asInt()).isPositive();
        assertThat(guest.path("p99VsNoBackup").asDouble()).isPositive();
        // the same writes during a full with the bounded copy-before-write (ADR 17), and the slow-scratch drill
        assertThat(guest.path("duringBackupBounded").path("writes").asInt()).isPositive();
        assertThat(guest.path("boundedP99VsNoBackup").asDouble()).isPositive();
        assertThat(guest.path("slowScratchBounded").path("cbwTimeoutSeconds").asInt())
                .isEqualTo(1);
        assertThat(guest.path("slowScratchBounded").path("backup").asText()).isNotEmpty();
        assertThat(guest.path("slowScratchClassic").path("cbwTimeoutSeconds").asInt())
                .isZero();
        assertThat(guest.path("duringBackupSmallWindow")
                        .path("backupMemoryBytes")
                        .asLong())
                .isEqualTo(MIB);
        assertThat(guest.path("qemuCbwOptions")).extracting(JsonNode::asText).contains("on-cbw-error", "cbw-timeout");

        JsonNode inc = r.path("incremental");
        long changed = inc.path("changedBytes").asLong();
        assertThat(changed).isEqualTo(6 * 64 * 1024); // 1 % of 32 MiB in 64 KiB blocks, rounded up
        // only the chunks holding a change are read; restic reads the whole image again
        assertThat(inc.path("tidemarkBytesRead").asLong()).isBetween(changed, 6 * 256 * 1024L);
        assertThat(inc.path("resticBytesRead").asLong()).isEqualTo(32 * MIB);
        assertThat(inc.path("bytesReadVsRestic").asDouble()).isLessThan(0.1);

        JsonNode zero = r.path("zeroChange");
        assertThat(zero.path("incrementalBytesRead").asLong()).isZero();
        // a manifest and an index root: no chunk, no page
        assertThat(zero.path("incrementalBytesWritten").asLong()).isPositive().isLessThan(8 * 1024);
        assertThat(zero.path("fullBytesWritten").asLong()).isGreaterThan(random / 2);

        JsonNode clones = r.path("clones");
        assertThat(clones.path("bytesRead").asLong()).isEqualTo(3 * 8 * MIB);
        assertThat(clones.path("costInImages").asDouble()).isBetween(1.0, 1.6);
        assertThat(clones.path("dedupRatio").asDouble()).isGreaterThan(2.0);

        // scattered 4 KiB writes on the mixed image (ADR 15): issue 15 goal 2's byte ratios
        JsonNode scattered = r.path("scatteredIncremental");
        assertThat(scattered.path("incremental").asBoolean()).isTrue();
        assertThat(scattered.path("scatteredWrites").asInt()).isPositive();
        assertThat(scattered.path("bytesReadVsChanged").asDouble()).isPositive().isLessThanOrEqualTo(8.0);
        assertThat(scattered.path("bytesStoredVsChanged").asDouble())
                .isPositive()
                .isLessThanOrEqualTo(4.0);
        assertThat(scattered.path("resticSeconds").asDouble()).isPositive();
        assertThat(scattered.path("restoreMatchesImage").asBoolean()).isTrue();
        assertThat(Files.exists(work)).isFalse(); // removed without --keep
    }

    @Test
    void aSizeThatIsNotOneIsInvalidInput() {
        assertThat(Main.execute("bench", "--image-size", "lots")).isEqualTo(1);
        assertThat(std.err()).contains("'lots' is not a size");
        std.reset();
        assertThat(Main.execute("bench", "--help")).isZero();
        assertThat(std.out()).contains("Example", "--image-size", "nbdcopy", "restic");
    }
}

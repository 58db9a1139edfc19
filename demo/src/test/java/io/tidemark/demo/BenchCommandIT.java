package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.cli.Main;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.format.Json;
import io.tidemark.testkit.StdStreams;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
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
        // 200 before and after the classic full, and 100 after each of the four bounded fulls
        assertThat(guest.path("noBackup").path("writes").asInt()).isEqualTo(800);
        assertThat(guest.path("duringBackup").path("writes").asInt()).isPositive();
        assertThat(guest.path("p99VsNoBackup").asDouble()).isPositive();
        // the same writes during a full with the bounded copy-before-write (ADR 17), and the slow-scratch drill
        assertThat(guest.path("duringBackupBounded").path("writes").asInt()).isPositive();
        assertThat(guest.path("boundedP99VsNoBackup").asDouble()).isPositive();
        // the bounded fulls at backupNice 0 and 10 (the default), A B B A, each pooled
        assertThat(guest.path("duringBackupBoundedNiceZero").path("backupNice").asInt())
                .isZero();
        assertThat(guest.path("duringBackupBounded").path("backupNice").asInt()).isEqualTo(10);
        assertThat(guest.path("boundedPooled").path("writes").asInt())
                .isEqualTo(guest.path("duringBackupBounded").path("writes").asInt()
                        + guest.path("duringBackupBoundedAgain").path("writes").asInt());
        assertThat(guest.path("boundedNiceZeroP99VsNoBackup").asDouble()).isPositive();
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

    /**
     * {@code --scenarios guest-os} at 32 MiB (about 30 s, most of it the guest's boot under TCG):
     * the phases' figures, and the guest's disk afterwards holds the writer's pattern in exactly the
     * blocks its seeds and write counts name (tm-wlat's offsets, modelled below), so each reported
     * latency is a write that reached the disk and the stop file ended the writer of each backup.
     */
    @Test
    void guestOsMeasuresWritesInsideTheGuestThatReachTheDiskWhereItSays() throws Exception {
        Path work = dir.resolve("g");
        int code = Main.execute(
                "bench",
                "--scenarios",
                "guest-os",
                "--image-size",
                "32MiB",
                "--dir",
                work.toString(),
                "--keep",
                "--json");
        assertThat(code).as(std.err()).isZero();
        String out = std.out();
        JsonNode g =
                Json.mapper().readTree(out.substring(out.indexOf("\n{") + 1)).path("guestOs");

        assertThat(g.path("diskBytes").asLong()).isEqualTo(32 * MIB); // --guest-size capped by --image-size
        assertThat(g.path("loadAverageAtStart").asText()).matches("[0-9.]+ [0-9.]+ [0-9.]+");
        assertThat(g.path("idlePhases"))
                .hasSize(4)
                .allSatisfy(p -> assertThat(p.path("writes").asInt()).isEqualTo(400));
        assertThat(g.path("noBackup").path("writes").asInt()).isEqualTo(1600);
        assertThat(g.path("noBackup").path("p50Ms").asDouble()).isPositive();
        JsonNode bounded = g.path("duringBackup");
        JsonNode classic = g.path("duringBackupClassic");
        JsonNode niceZero = g.path("duringBackupNiceZero");
        assertThat(bounded.path("cbwTimeoutSeconds").asInt()).isEqualTo(10); // the default capture
        assertThat(classic.path("cbwTimeoutSeconds").asInt()).isZero();
        assertThat(niceZero.path("cbwTimeoutSeconds").asInt()).isEqualTo(10);
        assertThat(bounded.path("backupNice").asInt()).isEqualTo(10); // the default
        assertThat(niceZero.path("backupNice").asInt()).isZero();
        for (JsonNode during : List.of(bounded, classic, niceZero)) {
            assertThat(during.path("backup").asText()).isEqualTo("restore point made");
            assertThat(during.path("writes").asInt()).isPositive();
            assertThat(during.path("backupSeconds").asDouble()).isPositive();
            assertThat(during.path("p99Ms").asDouble())
                    .isGreaterThanOrEqualTo(during.path("p50Ms").asDouble());
        }
        assertThat(g.path("p99VsNoBackup").asDouble()).isPositive();
        assertThat(g.path("classicP99VsNoBackup").asDouble()).isPositive();
        assertThat(g.path("niceZeroP99VsNoBackup").asDouble()).isPositive();

        Set<Long> written = new TreeSet<>();
        List<JsonNode> phases = new ArrayList<>();
        g.path("idlePhases").forEach(phases::add);
        phases.addAll(List.of(bounded, classic, niceZero));
        for (JsonNode p : phases) {
            written.addAll(
                    tmWlatBlocks(p.path("seed").asLong(), p.path("writes").asInt(), 32 * MIB / 4096));
        }
        assertThat(phases).extracting(p -> p.path("seed").asLong()).doesNotHaveDuplicates();
        Path raw = dir.resolve("vd1.raw");
        Path image = work.resolve("guest-os").resolve("gl-vd1.qcow2");
        ExternalCommand.of("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image.toString(), raw.toString())
                .run();
        assertThat(patternBlocks(Files.readAllBytes(raw))).isEqualTo(written);
    }

    /** The blocks tm-wlat writes (deploy/guest/guest-write-latency.c): xorshift64 from the seed, mod blocks. */
    private static Set<Long> tmWlatBlocks(long seed, int writes, long blocks) {
        Set<Long> out = new TreeSet<>();
        long x = seed != 0 ? seed : 0x9E3779B97F4A7C15L;
        for (int i = 0; i < writes; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            out.add(Long.remainderUnsigned(x, blocks));
        }
        return out;
    }

    /** The 4 KiB blocks of {@code image} that hold tm-wlat's 16-byte pattern, repeated, and nothing else. */
    private static Set<Long> patternBlocks(byte[] image) {
        byte[] block = new byte[4096];
        byte[] pattern = "tm-wlat pattern\n".getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < block.length; i += pattern.length) {
            System.arraycopy(pattern, 0, block, i, pattern.length);
        }
        Set<Long> out = new TreeSet<>();
        for (int b = 0; b < image.length / block.length; b++) {
            if (Arrays.equals(image, b * block.length, (b + 1) * block.length, block, 0, block.length)) {
                out.add((long) b);
            }
        }
        return out;
    }

    @Test
    void aSizeThatIsNotOneIsInvalidInput() {
        assertThat(Main.execute("bench", "--image-size", "lots")).isEqualTo(1);
        assertThat(std.err()).contains("'lots' is not a size");
        std.reset();
        assertThat(Main.execute("bench", "--help")).isZero();
        assertThat(std.out()).contains("Example", "--image-size", "nbdcopy", "restic", "guest-os");
    }
}

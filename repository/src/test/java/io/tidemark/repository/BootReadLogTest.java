package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.format.ObjectKeys;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BootReadLogTest {

    /** A version-1 trace as written today: it must parse forever. */
    private static final String GOLDEN_V1 =
            """
            {"version":1,"vm":"web-1","disk":"sd0","restorePoint":"20261207T080000.000Z-3fa9c1",\
            "at":"2026-12-07T08:02:00Z","chunkSize":262144,"chunks":[0,4097,12,8193]}""";

    private final InMemoryObjectTarget target = new InMemoryObjectTarget("mem");
    private final BootReadLog log = new BootReadLog(target);

    @Test
    void aVersionOneTraceParsesForever() {
        target.putIfAbsent(
                ObjectKeys.bootReads("web-1", "sd0", "1796630520000-20261207T080000.000Z-3fa9c1"),
                GOLDEN_V1.getBytes(StandardCharsets.UTF_8));
        BootReadTrace t = log.latest("web-1", "sd0").orElseThrow();
        assertThat(t)
                .isEqualTo(new BootReadTrace(
                        1,
                        "web-1",
                        "sd0",
                        "20261207T080000.000Z-3fa9c1",
                        Instant.parse("2026-12-07T08:02:00Z"),
                        262144,
                        List.of(0L, 4097L, 12L, 8193L)));
    }

    @Test
    void theNewestTraceWinsAndOnlyThreePerDiskAreKept() {
        for (int i = 0; i < 5; i++) {
            log.record(
                    trace("web-1", "sd0", Instant.parse("2026-12-07T08:00:00Z").plusSeconds(i), List.of((long) i)));
        }
        log.record(trace("web-1", "sd1", Instant.parse("2026-12-07T07:00:00Z"), List.of(99L)));
        assertThat(target.list(ObjectKeys.bootReadsPrefix("web-1", "sd0"))).hasSize(BootReadLog.KEEP);
        assertThat(log.latest("web-1", "sd0").orElseThrow().chunks()).containsExactly(4L);
        assertThat(log.latest("web-1", "sd1").orElseThrow().chunks()).containsExactly(99L);
        assertThat(log.latest("web-2", "sd0")).isEmpty();
    }

    @Test
    void aTraceIsBoundedWhenWrittenAndWhenRead() {
        List<Long> tooMany = new ArrayList<>();
        for (long c = 0; c <= BootReadLog.MAX_CHUNKS; c++) {
            tooMany.add(c);
        }
        assertThatThrownBy(() -> log.record(trace("web-1", "sd0", Instant.EPOCH, tooMany)))
                .isInstanceOf(IllegalArgumentException.class);
        String json = GOLDEN_V1.replace("[0,4097,12,8193]", tooMany.toString().replace(" ", ""));
        target.putIfAbsent(ObjectKeys.bootReads("web-1", "sd0", "1"), json.getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> log.latest("web-1", "sd0"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("state/boot-reads/web-1/sd0/1.json");
    }

    @Test
    void diskNamesAreCheckedLikeVmNames() {
        assertThatThrownBy(() -> ObjectKeys.bootReadsPrefix("web-1", "../x"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("invalid disk name");
    }

    private static BootReadTrace trace(String vm, String disk, Instant at, List<Long> chunks) {
        return new BootReadTrace(BootReadTrace.VERSION, vm, disk, "p", at, 262144, chunks);
    }
}

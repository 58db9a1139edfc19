package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.demo.bench.Topology;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The short form of the topology run ({@code tidemark bench topology}): 3 Kafka KRaft nodes,
 * PostgreSQL, 2 schedulers on a Quartz JDBC cluster, 2 worker hosts with a QEMU VM each, 2
 * replicators and S3Proxy, every role a {@code tidemark run --roles ...} process; one SIGKILL of
 * each kind (the scheduler that fired last, a worker host, a replicator, a Kafka node) and a
 * PostgreSQL restart, and one VM migrating between the worker hosts. Every check must pass: no
 * firing lost or doubled, no job lost, no half-visible point, every point on the target and
 * restored from there bit-identical to the disk at its snapshot moment, the migrated VM's first
 * point on its new host chained or with the reason of its full.
 */
class TopologyIT {

    @Test
    void aFleetOfProcessesLosesNoFiringJobOrPointUnderOneKillOfEachKind() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "tm-topoit-");
        Topology.Options options = new Topology.Options(
                dir,
                2,
                1,
                4L << 20,
                Duration.ofSeconds(10),
                Topology.KINDS.size(),
                Topology.KINDS,
                Duration.ofSeconds(2),
                Duration.ofSeconds(2),
                true,
                false,
                false,
                Long.getLong("topology.seed", 3L));
        Topology.Result r = new Topology(options, line -> System.out.println("topology: " + line)).run();
        SoakCommand.print(r.figures(), System.out);
        assertThat(r.figures().path("firings").path("jobs").asInt()).isPositive();
        assertThat(r.figures().path("points").path("restoredBitIdentical").asInt())
                .isEqualTo(r.figures().path("points").path("primary").asInt());
        assertThat(r.figures().path("migration").path("vm").asText()).isNotEmpty();
        assertThat(r.failures())
                .as("topology checks (process logs under %s)", dir.resolve("logs"))
                .isEmpty();
        io.tidemark.core.files.FileTrees.delete(dir);
    }
}

package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.libvirt.LibvirtDomain;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.workers.CaptureHooks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tidemark run} on a libvirt host: with {@code hypervisor: {type: libvirt, uri: ...}} the
 * engine finds the running domains of a real libvirtd and turns jobs from Kafka into restore points
 * that restore bit-identically, a full one and then an incremental one.
 */
class LibvirtEngineIT {

    private static final long MIB = 1 << 20;
    private static final String HOST = "lv-host";

    @TempDir
    Path dir;

    @Test
    void jobsForADomainOnALibvirtHostBecomeRestorePointsThatRestoreBitIdentically() throws Exception {
        try (Libvirtd libvirtd = Libvirtd.start(Files.createTempDirectory("tm-lve"));
                LibvirtDomain d = libvirtd.startDomain("web-1", 16 * MIB, 16 * MIB)) {
            d.write("vda", 0, (int) MIB, 0x31);
            d.write("sda", 9 * MIB, 4096, 0x32);
            EngineConfig config = EngineConfig.builder()
                    .host(HOST)
                    .data(dir.resolve("data"))
                    .policies(Files.createDirectories(dir.resolve("policies")))
                    .metrics("")
                    .hypervisor(EngineConfig.HypervisorConfig.libvirt(libvirtd.uri()))
                    .build();
            try (Engine engine = Engine.start(config, CaptureHooks.NONE, Clock.systemUTC())) {
                String vdaAt1 = d.model("vda").sha256();
                Manifest full = backup(engine, d.name(), "lv/1");
                d.write("sda", 2 * MIB, 100, 0x33);
                String sdaAt2 = d.model("sda").sha256();
                Manifest inc = backup(engine, d.name(), "lv/2");

                assertThat(full.incremental()).isFalse();
                assertThat(full.host()).isEqualTo(HOST);
                assertThat(inc.incremental()).isTrue();
                assertThat(inc.disk("vda").orElseThrow().bytesRead()).isZero();
                Restorer restorer = new Restorer(engine.repository(), 2);
                assertThat(restorer.restoreDisk(full, "vda", dir.resolve("vda-1.raw"), Restorer.Progress.NONE)
                                .sha256())
                        .isEqualTo(vdaAt1);
                assertThat(restorer.restoreDisk(inc, "sda", dir.resolve("sda-2.raw"), Restorer.Progress.NONE)
                                .sha256())
                        .isEqualTo(sdaAt2);
            }
        }
    }

    private static Manifest backup(Engine engine, String vm, String jobId) {
        engine.bus()
                .publish(
                        Topics.jobs(HOST),
                        vm,
                        Event.of(
                                jobId,
                                Instant.now(),
                                new SnapshotJob(vm, HOST, "manual", Trigger.manual(), List.of(), Instant.now())));
        await("restore point of job " + jobId)
                .atMost(Duration.ofSeconds(180))
                .until(() -> engine.repository().findByJob(vm, jobId).isPresent());
        return engine.repository().findByJob(vm, jobId).orElseThrow();
    }
}

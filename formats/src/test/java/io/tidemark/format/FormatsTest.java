package io.tidemark.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.repository.VmDefinition;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FormatsTest {

    private static byte[] golden(String name) throws IOException {
        try (InputStream in = FormatsTest.class.getResourceAsStream("/golden/" + name)) {
            return in.readAllBytes();
        }
    }

    @Test
    void goldenManifestV1ParsesForever() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1.json"));
        assertThat(m.id()).isEqualTo("20261124T013000.123Z-3fa9c1");
        assertThat(m.parent()).contains("20261124T012500.001Z-00aa11");
        assertThat(m.trigger().attributes()).containsEntry("policy", "web-tier");
        assertThat(m.disks()).singleElement().satisfies(d -> {
            assertThat(d.sizeBytes()).isEqualTo(64L << 20);
            assertThat(d.fullReason()).isEmpty();
            assertThat(d.bytesRead()).isEqualTo(524288);
        });
        assertThat(m.incremental()).isTrue();
        // and it round-trips to the same record
        assertThat(ManifestCodec.decode("again", ManifestCodec.encode(m))).isEqualTo(m);
    }

    @Test
    void aPointWrittenBeforeDefinitionsExistedHasNone() throws IOException {
        for (String name : List.of(
                "manifest-v1.json",
                "manifest-v1-consistency-reason.json",
                "manifest-v1-full-reason.json",
                "manifest-v1-full-reason-kind.json")) {
            assertThat(ManifestCodec.decode(name, golden(name)).definition())
                    .as(name)
                    .isEmpty();
        }
    }

    @Test
    void goldenManifestWithALibvirtDefinitionParsesForever() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1-definition-libvirt.json"));
        VmDefinition d = m.definition().orElseThrow();
        assertThat(d.version()).isEqualTo(1);
        assertThat(d.source()).isEqualTo(VmDefinition.LIBVIRT);
        assertThat(d.machine()).isEqualTo("pc-q35-7.2");
        assertThat(d.cpus()).isEqualTo(2);
        assertThat(d.memoryBytes()).isEqualTo(512L << 20);
        assertThat(d.disks()).singleElement().satisfies(disk -> {
            assertThat(disk.bus()).isEqualTo("virtio");
            assertThat(disk.serial()).contains("WEB1-ROOT");
            assertThat(disk.device()).isEmpty();
        });
        assertThat(d.nics()).singleElement().satisfies(nic -> {
            assertThat(nic.mac()).isEqualTo("52:54:00:aa:bb:01");
            assertThat(nic.network()).contains("network:prod");
        });
        assertThat(d.domainXml()).hasValueSatisfying(x -> assertThat(x).startsWith("<domain type=\"kvm\">"));
        assertThat(d.redacted()).containsExactly("./devices/graphics[vnc]/@passwd");
        assertThat(ManifestCodec.decode("again", ManifestCodec.encode(m))).isEqualTo(m);
    }

    @Test
    void goldenManifestWithAQmpDefinitionParsesForever() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1-definition-qmp.json"));
        VmDefinition d = m.definition().orElseThrow();
        assertThat(d.source()).isEqualTo(VmDefinition.QMP);
        assertThat(d.disks()).singleElement().satisfies(disk -> {
            assertThat(disk.device()).contains("scsi-hd");
            assertThat(disk.serial()).contains("SER123");
        });
        assertThat(d.nics()).singleElement().satisfies(nic -> assertThat(nic.model())
                .isEqualTo("virtio-net-pci"));
        assertThat(d.domainXml()).isEmpty();
        assertThat(ManifestCodec.decode("again", ManifestCodec.encode(m))).isEqualTo(m);
    }

    @Test
    void aDefinitionOfANewerLayoutStillReadsWithTheFieldsThisReaderKnows() throws IOException {
        com.fasterxml.jackson.databind.node.ObjectNode tree = (com.fasterxml.jackson.databind.node.ObjectNode)
                Json.mapper().readTree(golden("manifest-v1-definition-qmp.json"));
        com.fasterxml.jackson.databind.node.ObjectNode def =
                (com.fasterxml.jackson.databind.node.ObjectNode) tree.get("definition");
        def.put("version", 2).put("tpm", "2.0");
        Manifest m = ManifestCodec.decode("newer", Json.mapper().writeValueAsBytes(tree));
        assertThat(m.definition())
                .hasValueSatisfying(d -> assertThat(d.version()).isEqualTo(2));
    }

    @Test
    void goldenManifestWithAFullReasonWrittenBeforeKindsExistedReadsAsUnrecordedWithItsWords() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1-full-reason.json"));
        assertThat(m.disks()).singleElement().satisfies(d -> assertThat(d.fullReason())
                .hasValue(FullReason.of(
                        FullReason.Kind.UNRECORDED,
                        "checkpoint tm-20261124T013000.123Z-3fa9c1 inconsistent (QEMU was not shut down cleanly)")));
        assertThat(m.incremental()).isFalse();
        assertThat(m.parent()).isEmpty();
    }

    @Test
    void goldenManifestWithAFullReasonKindV1ParsesForever() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1-full-reason-kind.json"));
        assertThat(m.disks()).singleElement().satisfies(d -> assertThat(d.fullReason())
                .hasValue(FullReason.of(
                        FullReason.Kind.CHECKPOINT_INCONSISTENT,
                        "checkpoint tm-20261124T013000.123Z-3fa9c1 inconsistent (QEMU was not shut down cleanly)")));
        assertThat(ManifestCodec.decode("again", ManifestCodec.encode(m))).isEqualTo(m);
    }

    @Test
    void goldenManifestWithoutConsistencyReasonHasNone() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1.json"));
        assertThat(m.consistency()).isEqualTo(ConsistencyAchieved.CRASH);
        assertThat(m.consistencyReason()).isEmpty();
    }

    @Test
    void goldenManifestWithConsistencyReasonV1ParsesForever() throws IOException {
        Manifest m = ManifestCodec.decode("golden", golden("manifest-v1-consistency-reason.json"));
        assertThat(m.consistency()).isEqualTo(ConsistencyAchieved.CRASH);
        assertThat(m.consistencyReason())
                .hasValueSatisfying(r -> assertThat(r).contains("no guest agent answered", "web-1.qga"));
        assertThat(ManifestCodec.decode("again", ManifestCodec.encode(m))).isEqualTo(m);
    }

    @Test
    void goldenSnapshotJobEventV1ParsesForever() throws IOException {
        Event e = EventCodec.decode(golden("event-snapshot-job-v1.json"));
        assertThat(e.jobId()).isEqualTo("web-tier/web-1/1795483800000");
        assertThat(e.payload()).isInstanceOfSatisfying(SnapshotJob.class, j -> {
            assertThat(j.vm()).isEqualTo("web-1");
            assertThat(j.targets()).containsExactly("offsite-s3");
            // written before capture options existed: the defaults
            assertThat(j.consistency()).isEmpty();
            assertThat(j.fullEvery()).isEmpty();
            assertThat(j.readBytesPerSecond()).isEmpty();
            assertThat(j.applicationConsistencyWanted()).isFalse();
        });
    }

    @Test
    void goldenSnapshotJobWithCaptureOptionsV1ParsesForever() throws IOException {
        Event e = EventCodec.decode(golden("event-snapshot-job-v1-capture-options.json"));
        assertThat(e.payload()).isInstanceOfSatisfying(SnapshotJob.class, j -> {
            assertThat(j.consistency()).contains(ConsistencyPolicy.APPLICATION_REQUIRED);
            assertThat(j.applicationConsistencyRequired()).isTrue();
            assertThat(j.fullEvery()).contains(java.time.Duration.ofDays(7));
            assertThat(j.readBytesPerSecond()).hasValue(50L << 20);
            assertThat(j.readIopsPerSecond()).isEmpty(); // written before the I/O limit existed: none
        });
        assertThat(EventCodec.decode(EventCodec.encode(e))).isEqualTo(e);
    }

    @Test
    void goldenBudgetExceededV1ParsesForever() throws IOException {
        Event e = EventCodec.decode(golden("event-budget-exceeded-v1.json"));
        assertThat(e.payload())
                .isEqualTo(new io.tidemark.core.event.BudgetExceeded(
                        "db-1",
                        "local",
                        "db",
                        50L << 30,
                        56L << 30,
                        4L << 30,
                        "20261124T014500.000Z-1a2b3c",
                        "1 pinned: deploy 4f2a failed; 1 newest restore point"));
        assertThat(EventCodec.decode(EventCodec.encode(e))).isEqualTo(e);
    }

    @Test
    void goldenSnapshotJobWithReadIopsV1ParsesForever() throws IOException {
        Event e = EventCodec.decode(golden("event-snapshot-job-v1-read-iops.json"));
        assertThat(e.payload()).isInstanceOfSatisfying(SnapshotJob.class, j -> {
            assertThat(j.readBytesPerSecond()).hasValue(50L << 20);
            assertThat(j.readIopsPerSecond()).hasValue(2000);
            assertThat(j.retriggered(j.trigger(), j.scheduledFor()).readIopsPerSecond())
                    .hasValue(2000);
        });
        assertThat(EventCodec.decode(EventCodec.encode(e))).isEqualTo(e);
    }

    @Test
    void goldenSnapshotJobWithoutNotAfterNeverExpires() throws IOException {
        Event e = EventCodec.decode(golden("event-snapshot-job-v1.json"));
        assertThat(e.payload()).isInstanceOfSatisfying(SnapshotJob.class, j -> {
            assertThat(j.notAfter()).isEmpty();
            assertThat(j.expiredAt(Instant.parse("2099-01-01T00:00:00Z"))).isFalse();
        });
    }

    @Test
    void goldenSnapshotJobWithNotAfterV1ParsesForeverAndIsWrittenTheSameWay() throws IOException {
        byte[] golden = golden("event-snapshot-job-v1-not-after.json");
        Event e = EventCodec.decode(golden);
        assertThat(e.payload()).isInstanceOfSatisfying(SnapshotJob.class, j -> {
            assertThat(j.notAfter()).contains(Instant.parse("2026-11-24T01:45:00Z"));
            assertThat(j.expiredAt(Instant.parse("2026-11-24T01:45:00Z"))).isFalse();
            assertThat(j.expiredAt(Instant.parse("2026-11-24T01:45:00.001Z"))).isTrue();
        });
        com.fasterxml.jackson.databind.JsonNode written = Json.mapper().readTree(EventCodec.encode(e));
        // a field added since (the read I/O limit) is written as null when absent; the rest is unchanged
        assertThat(written.path("payload").path("readIopsPerSecond").isNull()).isTrue();
        ((com.fasterxml.jackson.databind.node.ObjectNode) written.path("payload")).remove("readIopsPerSecond");
        assertThat(written).isEqualTo(Json.mapper().readTree(golden));
    }

    @Test
    void goldenJobFailedV1WithoutReasonParsesForever() throws IOException {
        Event e = EventCodec.decode(golden("event-job-failed-v1.json"));
        assertThat(e.payload()).isInstanceOfSatisfying(JobFailed.class, f -> {
            assertThat(f.vm()).isEqualTo("web-1");
            assertThat(f.stage()).isEqualTo("backup");
            assertThat(f.retriable()).isFalse();
            assertThat(f.reason()).isEmpty();
        });
        assertThat(EventCodec.decode(EventCodec.encode(e))).isEqualTo(e);
    }

    @Test
    void goldenJobFailedWithReasonV1ParsesForeverAndIsWrittenTheSameWay() throws IOException {
        byte[] golden = golden("event-job-failed-v1-reason.json");
        Event e = EventCodec.decode(golden);
        assertThat(e.payload())
                .isEqualTo(JobFailed.of(
                        "web-1",
                        "capture",
                        FailureReason.DEADLINE_EXCEEDED,
                        "the job of VM 'web-1' did not finish within the job deadline PT30M (stage capture since"
                                + " 2026-11-24T01:30:00.120Z); it was cancelled and commits nothing; QEMU of 'web-1'"
                                + " may be stopped or hung",
                        true));
        assertThat(Json.mapper().readTree(EventCodec.encode(e)))
                .isEqualTo(Json.mapper().readTree(golden));
    }

    @Test
    void aJobFailedWithAReasonThisReaderDoesNotKnowIsReadWithoutAReason() {
        String newer = "{\"v\":1,\"type\":\"job-failed\",\"eventId\":\"e\",\"jobId\":\"j\",\"time\":"
                + "\"2026-11-24T02:00:00Z\",\"payload\":{\"vm\":\"web-1\",\"stage\":\"capture\",\"error\":\"x\","
                + "\"retriable\":true,\"reason\":\"SOMETHING_NEWER\"}}";
        Event e = EventCodec.decode(newer.getBytes(StandardCharsets.UTF_8));
        assertThat(e.payload()).isInstanceOfSatisfying(JobFailed.class, f -> {
            assertThat(f.reason()).isEmpty();
            assertThat(f.retriable()).isTrue();
        });
    }

    @Test
    void goldenPointMarkV1ParsesForever() throws IOException {
        PointMark mark = PointMarkCodec.decode("state/marks/shop-1/x.json", golden("point-mark-v1.json"));
        assertThat(mark.kind()).isEqualTo(PointMark.Kind.PINNED);
        assertThat(mark.attributes()).containsEntry("commit", "4f2a9c1");
        assertThat(PointMarkCodec.decode("again", PointMarkCodec.encode(mark))).isEqualTo(mark);
        assertThatThrownBy(() -> PointMarkCodec.decode("state/marks/shop-1/y.json", new byte[] {'{'}))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("state/marks/shop-1/y.json");
    }

    @Test
    void eventsRoundTripAndBadEventsArePermanentErrors() {
        Event e = Event.of(
                "j1",
                Instant.parse("2026-11-24T00:00:00Z"),
                new RestorePointCreated("vm", "rp", "pol", List.of("t"), Instant.EPOCH, 10, 5));
        assertThat(EventCodec.decode(EventCodec.encode(e))).isEqualTo(e);
        assertThatThrownBy(
                        () -> EventCodec.decode("{\"v\":9,\"type\":\"snapshot-job\"}".getBytes(StandardCharsets.UTF_8)))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("version 9");
        assertThatThrownBy(() -> EventCodec.decode("not json".getBytes(StandardCharsets.UTF_8)))
                .isInstanceOf(PermanentException.class);
        assertThatThrownBy(() -> EventCodec.decode("{\"v\":1,\"type\":\"nope\"}".getBytes(StandardCharsets.UTF_8)))
                .hasMessageContaining("unknown event type 'nope'");
    }

    @Test
    void objectsRoundTripCompressedOrNotAndCorruptionIsDetected() {
        byte[] zeros = new byte[262144];
        zeros[7] = 1;
        byte[] random = new byte[262144];
        new Random(1).nextBytes(random);
        for (byte[] plain : List.of(zeros, random)) {
            byte[] obj = ObjectCodec.encode(plain);
            Digest d = Digest.sha256(plain);
            assertThat(ObjectCodec.decode("k", obj, d)).isEqualTo(plain);
            obj[obj.length - 1] ^= 0x40;
            assertThatThrownBy(() -> ObjectCodec.decode("chunks/xx/k", obj, d))
                    .isInstanceOf(CorruptObjectException.class)
                    .hasMessageContaining("chunks/xx/k");
        }
        assertThat(ObjectCodec.encode(zeros).length).isLessThan(1000);
        assertThat(ObjectCodec.encode(random).length).isEqualTo(262144 + FormatConstants.OBJECT_HEADER_BYTES);
    }

    @Test
    void decodeIntoAReusedBufferAndVerifyAgreeWithDecodeAndDetectCorruption() {
        byte[] compressible = new byte[262144];
        compressible[7] = 1;
        byte[] random = new byte[262144];
        new Random(2).nextBytes(random);
        MasterKeys keys = MasterKeys.generate(new java.security.SecureRandom());
        byte[] into = new byte[262144];
        byte[] scratch = new byte[262144 + 100];
        for (MasterKeys k : java.util.Arrays.asList(null, keys)) {
            for (byte[] plain : List.of(compressible, random, "short".getBytes(StandardCharsets.UTF_8))) {
                Digest d = k == null ? Digest.sha256(plain) : k.name(plain);
                String key = ObjectKeys.chunk(d);
                byte[] obj = ObjectCodec.encode(plain, plain.length, key, k);
                // the object sits at the start of a larger reused buffer, after a previous, longer one
                java.util.Arrays.fill(scratch, (byte) 0x55);
                System.arraycopy(obj, 0, scratch, 0, obj.length);
                java.util.Arrays.fill(into, (byte) 0x66);
                int n = ObjectCodec.decodeInto(key, scratch, obj.length, d, k, into);
                assertThat(n).isEqualTo(plain.length);
                assertThat(java.util.Arrays.copyOf(into, n)).isEqualTo(plain);
                ObjectCodec.verify(key, obj, d, k);

                byte[] bad = obj.clone();
                bad[bad.length - 1] ^= 0x40;
                assertThatThrownBy(() -> ObjectCodec.decodeInto(key, bad, bad.length, d, k, into))
                        .isInstanceOf(CorruptObjectException.class)
                        .hasMessageContaining(key);
                assertThatThrownBy(() -> ObjectCodec.verify(key, bad, d, k))
                        .isInstanceOf(CorruptObjectException.class)
                        .hasMessageContaining(key);
                assertThatThrownBy(() -> ObjectCodec.decodeInto(key, obj, obj.length, d, k, new byte[plain.length - 1]))
                        .isInstanceOf(CorruptObjectException.class)
                        .hasMessageContaining(key);
            }
        }
    }

    @Test
    void objectHeaderLayoutIsExact() {
        byte[] obj = ObjectCodec.encode("abc".getBytes(StandardCharsets.UTF_8));
        assertThat(HexFormat.of().formatHex(obj, 0, FormatConstants.OBJECT_HEADER_BYTES))
                .isEqualTo("544d4f420100000000000003");
    }

    @Test
    void indexPagesAndRootsRoundTrip() {
        IndexPage page = new IndexPage(5);
        page.set(2, Digest.sha256(new byte[] {1}));
        IndexPage back = IndexPage.parse("p", page.toBytes());
        assertThat(back.get(2)).isEqualTo(page.get(2));
        assertThat(back.get(0).isZero()).isTrue();
        assertThat(page.toBytes()).hasSize(FormatConstants.PAGE_HEADER_BYTES + 5 * 32);

        long size = 3L * 262144 * 4 + 100; // 12 full chunks + a short one → 13 chunks, 4 pages of 4
        IndexRoot root = new IndexRoot(size, 262144, 4, List.of(Digest.ZERO, Digest.ZERO, Digest.ZERO, Digest.ZERO));
        assertThat(root.chunkCount()).isEqualTo(13);
        assertThat(root.entriesInPage(3)).isEqualTo(1);
        assertThat(IndexRoot.parse("r", root.toBytes())).isEqualTo(root);
        byte[] broken = root.toBytes();
        broken[20] = 9;
        assertThatThrownBy(() -> IndexRoot.parse("roots/ab/r", broken)).isInstanceOf(CorruptObjectException.class);
    }

    @Test
    void keysAndIds() {
        Digest d = Digest.sha256(new byte[0]);
        assertThat(ObjectKeys.chunk(d)).isEqualTo("chunks/e3/" + d.hex());
        assertThat(ObjectKeys.manifest("web-1", "X")).isEqualTo("manifests/web-1/X.json");
        assertThat(ObjectKeys.restorePointIdOf("manifests/web-1/X.json")).isEqualTo("X");
        assertThatThrownBy(() -> ObjectKeys.checkVmName("../etc")).hasMessageContaining("invalid VM name");
        String a = RestorePointIds.next(Instant.parse("2026-11-24T01:30:00.123Z"), new Random(1));
        String b = RestorePointIds.next(Instant.parse("2026-11-24T01:30:00.124Z"), new Random(1));
        assertThat(a).startsWith("20261124T013000.123Z-").isLessThan(b);
    }

    @Test
    void manifestWithoutParentRoundTrips() {
        Manifest m = new Manifest(
                1,
                "id",
                "vm",
                "h",
                "j",
                Instant.EPOCH,
                Instant.EPOCH,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "p",
                Optional.empty(),
                List.of());
        assertThat(ManifestCodec.decode("k", ManifestCodec.encode(m))).isEqualTo(m);
    }

    @Test
    void goldenInventoryEventsV1ParseForever() throws IOException {
        Event placed = EventCodec.decode(golden("event-vm-placed-v1.json"));
        assertThat(placed.payload())
                .isEqualTo(new io.tidemark.core.event.VmPlaced(
                        "web-1",
                        "hv-a",
                        java.util.Map.of("tier", "web"),
                        List.of(new io.tidemark.core.event.VmPlaced.Disk("vda", 64L << 20)),
                        Instant.parse("2026-11-24T01:30:00Z")));
        assertThat(EventCodec.decode(EventCodec.encode(placed))).isEqualTo(placed);
        Event gone = EventCodec.decode(golden("event-vm-gone-v1.json"));
        assertThat(gone.payload()).isEqualTo(new io.tidemark.core.event.VmGone("web-1", "hv-a"));
        assertThat(EventCodec.typeName(gone.payload())).isEqualTo("vm-gone");
    }
}

package io.tidemark.replicator;

import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.Tier;
import io.tidemark.policies.Tiers;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.Repository;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.targets.s3.S3TierRules;
import io.tidemark.testkit.ceph.CephCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.IntStream;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Tier transition timing on a real single-node Ceph RGW (memstore) with a GLACIER placement class
 * (docs/benchmarks.md §17): one VM, a full point of 64 chunks (256 KiB) and 19 incrementals of 8
 * changed chunks each, tiers warm 10 min then GLACIER; the sweep runs when the oldest ten points
 * are past warm. Measures the sweep (tag reads and writes), a second sweep (nothing to change: the
 * ledger spares every tag read), a third after one new incremental point,
 * putting the rules, and RGW's lifecycle pass that moves the tagged chunks. Not a test: a {@code
 * main} in test scope.
 */
public final class TierBench {

    private TierBench() {}

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("tier-bench");
        try (CephCluster ceph = CephCluster.start(dir.resolve("ceph"))) {
            ceph.addStorageClass("GLACIER"); // and restarts RGW, which learns a new class only at start
            ceph.createBucket("tier-bench", false);
            S3ObjectTarget target = S3ObjectTarget.create(
                    S3TargetSpec.builder()
                            .endpoint(ceph.rgwEndpoint())
                            .region(CephCluster.REGION)
                            .bucket("tier-bench")
                            .prefix("r/")
                            .pathStyle(true)
                            .build(),
                    S3Credentials.of(ceph.s3AccessKey(), ceph.s3SecretKey()));
            Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
            RestorePoints points = new RestorePoints(repo, "vm-1", 64, 17);
            Manifest m = points.full(64);
            for (int i = 1; i < 20; i++) {
                int from = (i * 8) % 64;
                m = points.incremental(
                        m, IntStream.range(from, from + 8).boxed().toList());
            }
            Instant now = m.capturedAt().plus(Duration.ofMinutes(1)); // points 0..9 past 10 min
            PolicySet policies = PolicySet.of(Policy.of(
                            "p",
                            VmSelector.ofNames("vm-1"),
                            Schedule.Interval.every(Duration.ofMinutes(1)),
                            Duration.ofMinutes(5),
                            List.of("offsite"))
                    .withTiers(new Tiers(List.of(
                            new Tier("warm", "offsite", Optional.empty(), Duration.ofMinutes(10)),
                            new Tier("cold", "offsite", Optional.of("GLACIER"), Duration.ofDays(365))))));
            TierSweep sweep = new TierSweep("offsite", repo, target);

            long t0 = System.nanoTime();
            TierSweep.Report first = sweep.run(policies, now);
            long sweepMs = ms(t0);
            t0 = System.nanoTime();
            TierSweep.Report second = sweep.run(policies, now);
            long again = ms(t0);
            // one more incremental point (8 changed chunks): the ledger makes the sweep read only its new tags
            m = points.incremental(m, IntStream.range(0, 8).boxed().toList());
            t0 = System.nanoTime();
            TierSweep.Report third = sweep.run(policies, now);
            long afterNew = ms(t0);
            t0 = System.nanoTime();
            new S3TierRules(target).apply(Set.of("GLACIER"), false);
            long rulesMs = ms(t0);
            t0 = System.nanoTime();
            ceph.radosgwAdmin("lc", "process", "--rgw-lc-debug-interval=1");
            long lcMs = ms(t0);
            long glacier;
            try (S3Client raw = ceph.newS3Client()) {
                glacier =
                        raw.listObjectsV2Paginator(r -> r.bucket("tier-bench").prefix("r/chunks/")).contents().stream()
                                .map(S3Object::storageClassAsString)
                                .filter("GLACIER"::equals)
                                .count();
            }
            System.out.printf(
                    "chunks %d; sweep %d ms (tagged %s, %d tag reads); second sweep %d ms (tagged %s, %d tag reads);"
                            + " after one new point %d ms (%d chunks, tagged %s, untagged %d, %d tag reads); rules %d ms;"
                            + " lc pass %d ms; chunks in GLACIER after it: %d%n",
                    first.chunks(),
                    sweepMs,
                    first.tagged(),
                    first.tagReads(),
                    again,
                    second.tagged(),
                    second.tagReads(),
                    afterNew,
                    third.chunks(),
                    third.tagged(),
                    third.untagged(),
                    third.tagReads(),
                    rulesMs,
                    lcMs,
                    glacier);
            target.close();
        }
    }

    private static long ms(long t0) {
        return (System.nanoTime() - t0) / 1_000_000;
    }
}

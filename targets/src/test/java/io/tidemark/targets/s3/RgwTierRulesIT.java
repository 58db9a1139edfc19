package io.tidemark.targets.s3;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.testkit.ceph.CephCluster;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ExpirationStatus;
import software.amazon.awssdk.services.s3.model.LifecycleRule;

/**
 * Tier lifecycle rules and tier tags against a real Ceph RGW (Pacific) with a GLACIER storage
 * class in its default placement (added with radosgw-admin, then the gateway restarted): the rules
 * Tidemark puts read back in sync, a rule it did not write is never overwritten silently, RGW's own
 * lifecycle pass moves exactly the tagged chunk to GLACIER, and the tier tag round-trips without
 * touching other tags. Its own cluster: it changes the zone group.
 */
class RgwTierRulesIT {

    private static final String BUCKET = "tidemark-tier-it";
    private static CephCluster ceph;
    private static S3Client raw;

    @BeforeAll
    static void start(@TempDir Path dir) {
        ceph = CephCluster.start(dir.resolve("ceph"));
        ceph.addStorageClass("GLACIER"); // and restarts RGW, which learns a new class only at start
        ceph.createBucket(BUCKET, false);
        raw = ceph.newS3Client();
    }

    @AfterAll
    static void stop() {
        if (raw != null) {
            raw.close();
        }
        if (ceph != null) {
            ceph.close();
        }
    }

    private static S3ObjectTarget target(String prefix) {
        return S3ObjectTarget.create(
                S3TargetSpec.builder()
                        .endpoint(ceph.rgwEndpoint())
                        .region(CephCluster.REGION)
                        .bucket(BUCKET)
                        .prefix(prefix)
                        .pathStyle(true)
                        .build(),
                S3Credentials.of(ceph.s3AccessKey(), ceph.s3SecretKey()));
    }

    @Test
    void rulesArePutCheckedAndForeignRulesAreNeverOverwrittenSilently() {
        raw.deleteBucketLifecycle(r -> r.bucket(BUCKET));
        try (S3ObjectTarget a = target("a/");
                S3ObjectTarget b = target("b/")) {
            S3TierRules rulesA = new S3TierRules(a);
            S3TierRules rulesB = new S3TierRules(b);
            assertThat(rulesA.check(Set.of("GLACIER")).missing()).containsExactly("GLACIER");

            rulesA.apply(Set.of("GLACIER"), false);
            rulesB.apply(Set.of("GLACIER"), false);
            assertThat(rulesA.check(Set.of("GLACIER")).inSync()).isTrue();
            assertThat(rulesB.check(Set.of("GLACIER")).inSync()).isTrue(); // b's put kept a's rule
            assertThat(rulesA.check(Set.of("GLACIER")).foreign()).isEmpty();
            assertThat(raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET))
                            .rules())
                    .extracting(LifecycleRule::id)
                    .containsExactlyInAnyOrder("tidemark-tier-GLACIER:a/", "tidemark-tier-GLACIER:b/");

            // an operator's own rule appears next to Tidemark's
            List<LifecycleRule> withForeign = new java.util.ArrayList<>(
                    raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET)).rules());
            withForeign.add(LifecycleRule.builder()
                    .id("expire-logs")
                    .status(ExpirationStatus.ENABLED)
                    .filter(f -> f.prefix("logs/"))
                    .expiration(e -> e.days(30))
                    .build());
            raw.putBucketLifecycleConfiguration(
                    r -> r.bucket(BUCKET).lifecycleConfiguration(c -> c.rules(withForeign)));

            // in sync: nothing to put, so nothing refused
            assertThat(rulesA.apply(Set.of("GLACIER"), false).foreign()).containsExactly("expire-logs");
            // a change would replace the whole configuration: refused, naming the rule and what to do
            assertThatThrownBy(() -> rulesA.apply(Set.of("GLACIER", "STANDARD_IA"), false))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("'expire-logs' that Tidemark did not write")
                    .hasMessageContaining("apply again keeping foreign rules");
            assertThat(raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET))
                            .rules())
                    .extracting(LifecycleRule::id)
                    .contains("expire-logs");

            // asked to keep it, Tidemark puts its change and the foreign rule back unchanged
            rulesA.apply(Set.of(), true);
            List<LifecycleRule> after =
                    raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET)).rules();
            assertThat(after)
                    .extracting(LifecycleRule::id)
                    .containsExactlyInAnyOrder("tidemark-tier-GLACIER:b/", "expire-logs");
            LifecycleRule foreign = after.stream()
                    .filter(r -> r.id().equals("expire-logs"))
                    .findFirst()
                    .orElseThrow();
            assertThat(foreign.expiration().days()).isEqualTo(30);
            assertThat(foreign.filter().prefix()).isEqualTo("logs/");
        }
    }

    @Test
    void aChangedTidemarkRuleIsReportedAsDrift() {
        raw.deleteBucketLifecycle(r -> r.bucket(BUCKET));
        try (S3ObjectTarget c = target("c/")) {
            S3TierRules rules = new S3TierRules(c);
            rules.apply(Set.of("GLACIER"), false);
            LifecycleRule edited = rules.rule("GLACIER").toBuilder()
                    .transitions(t -> t.days(5).storageClass("GLACIER"))
                    .build();
            raw.putBucketLifecycleConfiguration(r -> r.bucket(BUCKET).lifecycleConfiguration(l -> l.rules(edited)));
            S3TierRules.Drift drift = rules.check(Set.of("GLACIER"));
            assertThat(drift.changed()).containsExactly("tidemark-tier-GLACIER:c/");
            rules.apply(Set.of("GLACIER"), false);
            assertThat(rules.check(Set.of("GLACIER")).inSync()).isTrue();
        }
    }

    @Test
    void rgwMovesATaggedChunkToTheArchiveClassAndLeavesTheRestAlone() {
        raw.deleteBucketLifecycle(r -> r.bucket(BUCKET));
        try (S3ObjectTarget e = target("e/")) {
            new S3TierRules(e).apply(Set.of("GLACIER"), false);
            e.putIfAbsent("chunks/11/1111", "cold".getBytes(UTF_8));
            e.putIfAbsent("chunks/22/2222", "warm".getBytes(UTF_8));
            e.putIfAbsent("manifests/vm/p1", "manifest".getBytes(UTF_8));
            e.tagTier("chunks/11/1111", Optional.of("GLACIER"));
            e.tagTier("manifests/vm/p1", Optional.of("GLACIER")); // outside chunks/: the rule must not match

            ceph.radosgwAdmin("lc", "process", "--rgw-lc-debug-interval=1"); // one lifecycle pass now

            assertThat(e.placement("chunks/11/1111").storageClass()).isEqualTo("GLACIER");
            assertThat(e.placement("chunks/22/2222").storageClass()).isEqualTo("STANDARD");
            assertThat(e.placement("manifests/vm/p1").storageClass()).isEqualTo("STANDARD");
            // RGW has no restore: a GLACIER placement class is an ordinary readable pool there
            assertThat(e.get("chunks/11/1111")).hasValue("cold".getBytes(UTF_8));
            // so the chunk is readable as it is: a cold restore (ColdRestore, --cold-wait) requests nothing
            assertThat(e.placement("chunks/11/1111").readability()).isEqualTo(ColdStorage.Readability.READABLE);
        }
        // a restore request RGW answers 501 to: the object serves bytes, so it needs none (no error)
        try (S3ObjectTarget fresh = target("e/")) {
            fresh.requestRestore("chunks/11/1111", 1);
            ColdStorage.Placement p = fresh.placement("chunks/11/1111");
            assertThat(p.storageClass()).isEqualTo("GLACIER");
            assertThat(p.readable()).isTrue();
        }
        // a GLACIER object the store could not serve keeps the permanent error naming what to do
        try (S3ObjectTarget fresh = target("e/")) {
            assertThatThrownBy(() -> fresh.requestRestore("chunks/99/none", 1)).isInstanceOf(PermanentException.class);
        }
    }

    @Test
    void theTierTagRoundTripsAndKeepsOtherTags() {
        try (S3ObjectTarget d = target("d/")) {
            d.putIfAbsent("chunks/ab/abcd", "x".getBytes(UTF_8));
            raw.putObjectTagging(r -> r.bucket(BUCKET)
                    .key("d/chunks/ab/abcd")
                    .tagging(t -> t.tagSet(s -> s.key("owner").value("ops"))));
            assertThat(d.tierTag("chunks/ab/abcd")).isEmpty();
            d.tagTier("chunks/ab/abcd", Optional.of("GLACIER"));
            assertThat(d.tierTag("chunks/ab/abcd")).hasValue("GLACIER");
            assertThat(raw.getObjectTagging(r -> r.bucket(BUCKET).key("d/chunks/ab/abcd"))
                            .tagSet())
                    .extracting(t -> t.key() + "=" + t.value())
                    .containsExactlyInAnyOrder("owner=ops", ColdStorage.TIER_TAG + "=GLACIER");
            d.tagTier("chunks/ab/abcd", Optional.empty());
            assertThat(d.tierTag("chunks/ab/abcd")).isEmpty();
            assertThat(d.placement("chunks/ab/abcd").readability()).isEqualTo(ColdStorage.Readability.READABLE);
            assertThat(d.placement("chunks/ab/abcd").storageClass()).isEqualTo("STANDARD");
        }
    }
}

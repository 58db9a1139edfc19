package io.tidemark.targets.s3;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.ObjectLockRetention.Mode;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.testkit.contract.ObjectTargetContract;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectVersionsResponse;
import software.amazon.awssdk.services.s3.model.ObjectLockMode;
import software.amazon.awssdk.services.s3.model.ObjectVersion;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * S3 Object Lock through {@link S3ObjectTarget} on a real Ceph RGW (S3Proxy has no Object Lock).
 * RGW, like S3, makes an Object Lock bucket versioned: a plain DELETE only adds a delete marker
 * and the locked version stays, and deleting that version by id is refused until the retention
 * ends. These tests would fail if the lock headers were not sent or not honoured.
 */
@ExtendWith(CephClusterExtension.class)
class RgwObjectLockIT {

    private static final String LOCKED = "tidemark-locked";
    private static final String UNLOCKED = "tidemark-unlocked";
    private static final ObjectLockRetention COMPLIANCE_1D = ObjectLockRetention.ofDays(Mode.COMPLIANCE, 1);
    private static final ObjectLockRetention GOVERNANCE_1D = ObjectLockRetention.ofDays(Mode.GOVERNANCE, 1);
    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private static CephCluster ceph;
    private static S3Client raw;

    @BeforeAll
    static void createBuckets(CephCluster shared) {
        ceph = shared;
        ceph.createBucket(LOCKED, true);
        ceph.createBucket(UNLOCKED, false);
        raw = ceph.newS3Client();
    }

    @AfterAll
    static void closeClient() {
        raw.close();
    }

    private static S3ObjectTarget target(String bucket, ObjectLockRetention lock, Clock clock) {
        S3TargetSpec.Builder config = RgwObjectTargetIT.config(ceph, bucket, "lock-" + PREFIXES.incrementAndGet());
        if (lock != null) {
            config.objectLockMode(lock.mode().name())
                    .objectLockDays((int) lock.period().toDays());
        }
        return S3ObjectTarget.create(config.build(), RgwObjectTargetIT.credentials(ceph), clock);
    }

    /**
     * The whole port contract on an Object Lock bucket with every object locked. Not exclusive:
     * RGW 16 ignores {@code If-None-Match} on versioned buckets (see {@link S3ObjectTarget}).
     */
    @Nested
    class OnALockedBucket extends ObjectTargetContract {

        @Override
        protected ObjectTarget newTarget() {
            return target(LOCKED, COMPLIANCE_1D, Clock.systemUTC());
        }

        @Override
        protected boolean putIfAbsentIsExclusive() {
            return false;
        }

        @Override
        protected Set<String> secrets() {
            return Set.of(ceph.s3SecretKey());
        }
    }

    @Test
    void aComplianceLockedChunkSurvivesAPlainDeleteAndItsVersionCannotBeDeleted() {
        byte[] data = "chunk bytes".getBytes(UTF_8);
        String key = "chunks/ab/abcdef";
        try (S3ObjectTarget target = target(LOCKED, COMPLIANCE_1D, Clock.systemUTC())) {
            String s3Key = target.spec().prefix() + key;
            Instant before = Instant.now();

            assertThat(target.putIfAbsent(key, data)).isTrue();
            assertThat(target.putIfAbsent(key, "other".getBytes(UTF_8))).isFalse();

            HeadObjectResponse head = raw.headObject(r -> r.bucket(LOCKED).key(s3Key));
            assertThat(head.objectLockMode()).isEqualTo(ObjectLockMode.COMPLIANCE);
            assertThat(head.objectLockRetainUntilDate())
                    .isCloseTo(before.plus(Duration.ofDays(1)), within(1, ChronoUnit.MINUTES));
            assertThat(target.retainUntil(key)).hasValue(head.objectLockRetainUntilDate());
            assertThat(target.isLocked(key)).isTrue();

            target.delete(key); // a delete marker on a versioned bucket: no error, the key looks gone

            assertThat(target.exists(key)).isFalse();
            assertThat(target.isLocked(key)).as("no current version").isFalse();
            ListObjectVersionsResponse versions =
                    raw.listObjectVersions(r -> r.bucket(LOCKED).prefix(s3Key));
            assertThat(versions.deleteMarkers()).hasSize(1);
            assertThat(versions.versions()).hasSize(1);
            String versionId = versions.versions().get(0).versionId();
            assertThat(versionId).isEqualTo(head.versionId());

            assertThatThrownBy(() ->
                            raw.deleteObject(r -> r.bucket(LOCKED).key(s3Key).versionId(versionId)))
                    .isInstanceOfSatisfying(
                            S3Exception.class, e -> assertThat(e.statusCode()).isEqualTo(403));
            assertThatThrownBy(() -> raw.deleteObject(r ->
                            r.bucket(LOCKED).key(s3Key).versionId(versionId).bypassGovernanceRetention(true)))
                    .as("compliance mode cannot be bypassed")
                    .isInstanceOfSatisfying(
                            S3Exception.class, e -> assertThat(e.statusCode()).isEqualTo(403));
            assertThat(raw.getObjectAsBytes(r -> r.bucket(LOCKED).key(s3Key).versionId(versionId))
                            .asByteArray())
                    .isEqualTo(data);
        }
    }

    @Test
    void aGovernanceLockRefusesAPlainVersionDeleteButYieldsToAnExplicitBypass() {
        try (S3ObjectTarget target = target(LOCKED, GOVERNANCE_1D, Clock.systemUTC())) {
            String s3Key = target.spec().prefix() + "manifests/vm-1/0001.json";
            target.putIfAbsent("manifests/vm-1/0001.json", "{}".getBytes(UTF_8));
            String versionId = raw.headObject(r -> r.bucket(LOCKED).key(s3Key)).versionId();
            assertThat(raw.headObject(r -> r.bucket(LOCKED).key(s3Key)).objectLockMode())
                    .isEqualTo(ObjectLockMode.GOVERNANCE);

            assertThatThrownBy(() ->
                            raw.deleteObject(r -> r.bucket(LOCKED).key(s3Key).versionId(versionId)))
                    .isInstanceOfSatisfying(
                            S3Exception.class, e -> assertThat(e.statusCode()).isEqualTo(403));
            assertThat(target.exists("manifests/vm-1/0001.json")).isTrue();

            raw.deleteObject(
                    r -> r.bucket(LOCKED).key(s3Key).versionId(versionId).bypassGovernanceRetention(true));

            assertThat(raw.listObjectVersions(r -> r.bucket(LOCKED).prefix(s3Key))
                            .versions())
                    .extracting(ObjectVersion::versionId)
                    .doesNotContain(versionId);
        }
    }

    @Test
    void dataManifestsAndConfigAreLockedButStateIsNot() {
        try (S3ObjectTarget target = target(LOCKED, COMPLIANCE_1D, Clock.systemUTC())) {
            for (String key : new String[] {
                "config",
                "chunks/01/0123",
                "pages/01/0123",
                "roots/01/0123",
                "manifests/vm-1/0001.json",
                "state/gc/mark",
                "state/locks/vm-1"
            }) {
                target.putIfAbsent(key, key.getBytes(UTF_8));
            }

            for (String key : new String[] {
                "config", "chunks/01/0123", "pages/01/0123", "roots/01/0123", "manifests/vm-1/0001.json"
            }) {
                assertThat(target.isLocked(key)).as(key).isTrue();
            }
            for (String key : new String[] {"state/gc/mark", "state/locks/vm-1"}) {
                assertThat(target.retainUntil(key)).as(key).isEmpty();
                String s3Key = target.spec().prefix() + key;
                String versionId =
                        raw.headObject(r -> r.bucket(LOCKED).key(s3Key)).versionId();
                raw.deleteObject(r -> r.bucket(LOCKED).key(s3Key).versionId(versionId));
                assertThat(target.exists(key)).as(key).isFalse();
            }
        }
    }

    @Test
    void aRetentionThatHasEndedIsNotALock() {
        try (S3ObjectTarget writer = target(LOCKED, COMPLIANCE_1D, Clock.systemUTC());
                S3ObjectTarget twoDaysLater = new S3ObjectTarget(
                        RgwObjectTargetIT.config(ceph, LOCKED, writer.spec().prefix())
                                .build(),
                        writer.credentials(),
                        S3ObjectTarget.clientBuilder(
                                        writer.spec(), writer.credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                                .build(),
                        Clock.offset(Clock.systemUTC(), Duration.ofDays(2)))) {
            writer.putIfAbsent("chunks/01/0456", new byte[] {1});

            assertThat(twoDaysLater.retainUntil("chunks/01/0456")).isPresent();
            assertThat(twoDaysLater.isLocked("chunks/01/0456")).isFalse();
            assertThat(writer.isLocked("chunks/01/0456")).isTrue();
        }
    }

    @Test
    void withoutObjectLockConfiguredNothingIsLocked() {
        try (S3ObjectTarget target = target(LOCKED, null, Clock.systemUTC())) {
            target.putIfAbsent("chunks/01/0789", new byte[] {1});

            assertThat(target.retainUntil("chunks/01/0789")).isEmpty();
            assertThat(target.isLocked("chunks/01/0789")).isFalse();
            assertThat(target.describe()).doesNotContain("Object Lock");
        }
    }

    @Test
    void objectLockOnABucketWithoutItIsAPermanentErrorThatSaysWhatToDo() {
        try (S3ObjectTarget target = target(UNLOCKED, COMPLIANCE_1D, Clock.systemUTC())) {
            assertThat(target.describe()).contains("Object Lock COMPLIANCE 1 d");

            assertThatThrownBy(() -> target.putIfAbsent("chunks/01/0abc", new byte[] {1}))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("must have Object Lock enabled")
                    .hasMessageContaining(UNLOCKED)
                    .hasMessageNotContaining(ceph.s3SecretKey());
            assertThat(target.exists("chunks/01/0abc")).isFalse();
            assertThat(target.putIfAbsent("state/x", new byte[] {1}))
                    .as("state is never locked, so it can be written")
                    .isTrue();
            assertThat(target.retainUntil("state/x")).isEmpty();
        }
    }
}

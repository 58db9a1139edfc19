package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.testkit.contract.ObjectTargetContract;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The contract of {@link S3ObjectTarget} against a real Ceph RGW (Pacific), path style. */
@ExtendWith(CephClusterExtension.class)
class RgwObjectTargetIT extends ObjectTargetContract {

    private static final String BUCKET = "tidemark-rgw-it";
    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private static CephCluster ceph;

    @BeforeAll
    static void createBucket(CephCluster shared) {
        ceph = shared;
        ceph.createBucket(BUCKET, false);
    }

    static S3TargetSpec.Builder config(CephCluster ceph, String bucket, String keyPrefix) {
        return S3TargetSpec.builder()
                .endpoint(ceph.rgwEndpoint())
                .region(CephCluster.REGION)
                .bucket(bucket)
                .prefix(keyPrefix)
                .pathStyle(true);
    }

    static S3Credentials credentials(CephCluster ceph) {
        return S3Credentials.of(ceph.s3AccessKey(), ceph.s3SecretKey());
    }

    @Override
    protected ObjectTarget newTarget() {
        return S3ObjectTarget.create(
                config(ceph, BUCKET, "contract-" + PREFIXES.incrementAndGet()).build(), credentials(ceph));
    }

    @Override
    protected Set<String> secrets() {
        return Set.of(ceph.s3SecretKey());
    }

    @Test
    void describeNamesBucketPrefixAndEndpoint() {
        assertThat(target.describe())
                .startsWith("s3://" + BUCKET + "/contract-")
                .endsWith("(127.0.0.1:" + ceph.rgwEndpoint().getPort() + ")");
    }
}

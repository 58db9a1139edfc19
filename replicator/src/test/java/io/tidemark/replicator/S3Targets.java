package io.tidemark.replicator;

import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.targets.s3.S3TargetConfig;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.net.URI;
import java.time.Duration;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/** S3 target settings for the replication ITs and the benchmark. */
final class S3Targets {

    private S3Targets() {}

    /** Path-style settings for {@code s3}'s bucket, reached at {@code endpoint} (S3Proxy or a proxy before it). */
    static S3TargetConfig config(URI endpoint, EmbeddedS3 s3, String bucket, String prefix) {
        return new S3TargetConfig(
                endpoint, s3.region(), bucket, prefix, true, false, null, s3.accessKey(), s3.secretKey());
    }

    /**
     * A client that gives up on an attempt after {@code attemptTimeout} and does not retry by
     * itself, so that every fault reaches the caller's {@link RetryingObjectTarget}.
     */
    static S3Client withoutSdkRetries(S3TargetConfig config, Duration attemptTimeout) {
        S3ClientBuilder builder = S3ObjectTarget.clientBuilder(
                config, new S3TargetConfig.Timeouts(Duration.ofSeconds(2), attemptTimeout, attemptTimeout, null));
        return builder.overrideConfiguration(builder.overrideConfiguration().toBuilder()
                        .retryStrategy(AwsRetryStrategy.doNotRetry())
                        .build())
                .build();
    }
}

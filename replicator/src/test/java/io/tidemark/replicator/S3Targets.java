package io.tidemark.replicator;

import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.net.URI;
import java.time.Duration;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/** S3 target settings for the replication ITs and the benchmark. */
final class S3Targets {

    private S3Targets() {}

    /** A target's settings and the keys it signs with. */
    record Settings(S3TargetSpec spec, S3Credentials credentials) {
        /** A target with its own client. */
        S3ObjectTarget open() {
            return S3ObjectTarget.create(spec, credentials);
        }
    }

    /** Path-style settings at {@code endpoint} for a bucket of the given region and keys. */
    static Settings config(URI endpoint, String region, String bucket, String prefix, S3Credentials credentials) {
        return new Settings(
                S3TargetSpec.builder()
                        .endpoint(endpoint)
                        .region(region)
                        .bucket(bucket)
                        .prefix(prefix)
                        .pathStyle(true)
                        .build(),
                credentials);
    }

    /** Path-style settings for {@code s3}'s bucket, reached at {@code endpoint} (S3Proxy or a proxy before it). */
    static Settings config(URI endpoint, EmbeddedS3 s3, String bucket, String prefix) {
        return config(endpoint, s3.region(), bucket, prefix, S3Credentials.of(s3.accessKey(), s3.secretKey()));
    }

    /**
     * A client that gives up on an attempt after {@code attemptTimeout} and does not retry by
     * itself, so that every fault reaches the caller's {@link RetryingObjectTarget}.
     */
    static S3Client withoutSdkRetries(Settings config, Duration attemptTimeout) {
        S3ClientBuilder builder = S3ObjectTarget.clientBuilder(
                config.spec(),
                config.credentials(),
                new S3ObjectTarget.Timeouts(Duration.ofSeconds(2), attemptTimeout, attemptTimeout, null));
        return builder.overrideConfiguration(builder.overrideConfiguration().toBuilder()
                        .retryStrategy(AwsRetryStrategy.doNotRetry())
                        .build())
                .build();
    }
}

package io.tidemark.targets.s3;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.testkit.contract.ObjectTargetContract;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.http.SdkHttpRequest;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * {@link S3ObjectTarget} with the Alibaba OSS client settings ({@code ossCompatible}: virtual-hosted
 * style, no aws-chunked encoding, checksums only when required, Content-MD5, HEAD-then-PUT) against
 * a real S3Proxy serving virtual-hosted-style requests for {@code s3.local}. Runs in its own failsafe
 * fork with {@code -Djdk.net.hosts.file=src/test/resources/virtual-host.hosts}.
 */
class S3ObjectTargetOssModeIT extends ObjectTargetContract {

    private static final String BUCKET = "tidemark-oss";
    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private static EmbeddedS3 s3;

    @BeforeAll
    static void startS3() {
        s3 = EmbeddedS3.builder().virtualHost("s3.local").build().start();
        s3.createBucket(BUCKET);
    }

    @AfterAll
    static void stopS3() {
        s3.close();
    }

    private static S3TargetSpec config(String keyPrefix) {
        return S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(BUCKET)
                .prefix(keyPrefix)
                .ossCompatible(true)
                .build();
    }

    private static S3Credentials credentials() {
        return S3Credentials.of(s3.accessKey(), s3.secretKey());
    }

    @Override
    protected ObjectTarget newTarget() {
        return S3ObjectTarget.create(config("oss-" + PREFIXES.incrementAndGet()), credentials());
    }

    @Override
    protected Set<String> secrets() {
        return Set.of(s3.secretKey());
    }

    /** OSS has no conditional writes through its S3 API; see S3ObjectTarget's Javadoc. */
    @Override
    protected boolean putIfAbsentIsExclusive() {
        return false;
    }

    @Test
    void requestsUseOssSafeSettings() {
        RecordingInterceptor wire = new RecordingInterceptor();
        S3TargetSpec config = config("wire-" + PREFIXES.incrementAndGet());
        try (S3Client client = S3ObjectTarget.clientBuilder(config, credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                        .overrideConfiguration(o -> o.addExecutionInterceptor(wire))
                        .build();
                S3ObjectTarget oss = new S3ObjectTarget(config, credentials(), client)) {
            assertThat(oss.putIfAbsent("chunks/k", "payload".getBytes(UTF_8))).isTrue();
            assertThat(oss.putIfAbsent("chunks/k", "other".getBytes(UTF_8))).isFalse();

            assertThat(wire.sent()).extracting(r -> r.method().name()).containsExactly("HEAD", "PUT", "HEAD");
            SdkHttpRequest put = wire.last("PUT");
            assertThat(put.host()).isEqualTo(BUCKET + ".s3.local");
            assertThat(put.encodedPath()).isEqualTo("/" + config.prefix() + "chunks/k");
            assertThat(put.firstMatchingHeader("Content-MD5")).hasValue("Mhw89IbtUJFk7eweGYH+yA==");
            assertThat(put.firstMatchingHeader("x-amz-content-sha256"))
                    .hasValue("239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5");
            assertThat(put.firstMatchingHeader("Authorization"))
                    .hasValueSatisfying(auth -> assertThat(auth).startsWith("AWS4-HMAC-SHA256 "));
            assertThat(put.headers().keySet())
                    .map(String::toLowerCase)
                    .doesNotContain("if-none-match", "x-amz-trailer", "x-amz-sdk-checksum-algorithm")
                    .noneMatch(name -> name.startsWith("x-amz-checksum-"));
            assertThat(put.firstMatchingHeader("Content-Encoding")).isEmpty();
        }
    }

    @Test
    void aBodyThatDoesNotMatchItsMd5IsRefusedAndRetriable() {
        RecordingInterceptor wire = new RecordingInterceptor();
        wire.tamperWith(request -> request.method().name().equals("PUT")
                ? request.toBuilder()
                        .putHeader("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")
                        .build()
                : request);
        S3TargetSpec config = config("digest-" + PREFIXES.incrementAndGet());
        try (S3Client client = S3ObjectTarget.clientBuilder(config, credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                        .overrideConfiguration(o -> o.addExecutionInterceptor(wire))
                        .build();
                S3ObjectTarget tampered = new S3ObjectTarget(config, credentials(), client)) {
            assertThatThrownBy(() -> tampered.putIfAbsent("k", "payload".getBytes(UTF_8)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("BadDigest");
            wire.tamperWith(request -> request);
            assertThat(tampered.exists("k")).isFalse();
        }
    }
}

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
import software.amazon.awssdk.services.s3.model.S3Object;

/** The contract and the wire behaviour of {@link S3ObjectTarget} against a real S3Proxy, path style. */
class S3ObjectTargetIT extends ObjectTargetContract {

    private static final String BUCKET = "tidemark-it";
    private static final AtomicInteger PREFIXES = new AtomicInteger();
    private static EmbeddedS3 s3;

    @BeforeAll
    static void startS3() {
        s3 = EmbeddedS3.builder().build().start();
        s3.createBucket(BUCKET);
    }

    @AfterAll
    static void stopS3() {
        s3.close();
    }

    static S3TargetSpec config(String keyPrefix) {
        return S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(BUCKET)
                .prefix(keyPrefix)
                .pathStyle(true)
                .build();
    }

    static S3Credentials credentials() {
        return S3Credentials.of(s3.accessKey(), s3.secretKey());
    }

    @Override
    protected ObjectTarget newTarget() {
        return S3ObjectTarget.create(config("contract-" + PREFIXES.incrementAndGet()), credentials());
    }

    @Override
    protected Set<String> secrets() {
        return Set.of(s3.secretKey());
    }

    @Test
    void describeNamesBucketPrefixAndEndpoint() {
        assertThat(target.describe())
                .startsWith("s3://" + BUCKET + "/contract-")
                .endsWith("(127.0.0.1:" + s3.port() + ")");
    }

    @Test
    void objectsLandUnderTheKeyPrefixAndListStripsIt() {
        S3TargetSpec config = config("backups/site-a");
        try (S3ObjectTarget prefixed = S3ObjectTarget.create(config, credentials());
                S3Client raw = S3ObjectTarget.clientBuilder(config, credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                        .build()) {
            prefixed.putIfAbsent("chunks/01", "x".getBytes(UTF_8));

            assertThat(raw.listObjectsV2(r -> r.bucket(BUCKET).prefix("backups/"))
                            .contents())
                    .extracting(S3Object::key)
                    .containsExactly("backups/site-a/chunks/01");
            assertThat(prefixed.list("")).containsExactly("chunks/01");
        }
    }

    @Test
    void putIfAbsentIsOneConditionalPutCarryingTheSdksCrc32() {
        RecordingInterceptor wire = new RecordingInterceptor();
        S3TargetSpec config = config("wire-" + PREFIXES.incrementAndGet());
        try (S3Client client = S3ObjectTarget.clientBuilder(config, credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                        .overrideConfiguration(o -> o.addExecutionInterceptor(wire))
                        .build();
                S3ObjectTarget recorded = new S3ObjectTarget(config, credentials(), client)) {
            assertThat(recorded.putIfAbsent("k", "payload".getBytes(UTF_8))).isTrue();
            assertThat(recorded.putIfAbsent("k", "other".getBytes(UTF_8))).isFalse();

            assertThat(wire.sent()).extracting(r -> r.method().name()).containsExactly("PUT", "PUT");
            SdkHttpRequest put = wire.sent().get(0);
            assertThat(put.firstMatchingHeader("If-None-Match")).hasValue("*");
            assertThat(put.firstMatchingHeader("x-amz-checksum-crc32")).hasValue("QixqFQ==");
            assertThat(put.firstMatchingHeader("x-amz-checksum-sha256")).isEmpty(); // one hash less per body
        }
    }

    @Test
    void theStorageClassIsSentWithEachPut() {
        RecordingInterceptor wire = new RecordingInterceptor();
        S3TargetSpec config = S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(BUCKET)
                .prefix("class-" + PREFIXES.incrementAndGet())
                .pathStyle(true)
                .storageClass("STANDARD_IA")
                .build();
        try (S3Client client = S3ObjectTarget.clientBuilder(config, credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                        .overrideConfiguration(o -> o.addExecutionInterceptor(wire))
                        .build();
                S3ObjectTarget infrequent = new S3ObjectTarget(config, credentials(), client)) {
            assertThat(infrequent.putIfAbsent("k", new byte[] {1})).isTrue();

            assertThat(wire.last("PUT").firstMatchingHeader("x-amz-storage-class"))
                    .hasValue("STANDARD_IA");
            assertThat(infrequent.get("k"))
                    .hasValueSatisfying(read -> assertThat(read).containsExactly(1));
        }
    }

    @Test
    void aBodyThatDoesNotMatchItsChecksumIsRefusedAndRetriable() {
        RecordingInterceptor wire = new RecordingInterceptor();
        wire.tamperWith(request -> request.method().name().equals("PUT")
                ? request.toBuilder()
                        .putHeader("x-amz-checksum-crc32", "AAAAAA==")
                        .build()
                : request);
        S3TargetSpec config = config("digest-" + PREFIXES.incrementAndGet());
        try (S3Client client = S3ObjectTarget.clientBuilder(config, credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                        .overrideConfiguration(o -> o.addExecutionInterceptor(wire))
                        .build();
                S3ObjectTarget tampered = new S3ObjectTarget(config, credentials(), client)) {
            assertThatThrownBy(() -> tampered.putIfAbsent("k", "payload".getBytes(UTF_8)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("BadDigest")
                    .hasMessageContaining("s3://" + BUCKET + "/" + config.prefix() + "k");
            wire.tamperWith(request -> request);
            assertThat(tampered.exists("k")).isFalse();
        }
    }
}

package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** How {@link S3ObjectTarget} reports refused credentials, a missing bucket and a dead endpoint. */
class S3ObjectTargetFailureIT {

    private static final String BUCKET = "tidemark-failures";
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

    private static S3TargetSpec config(String bucket) {
        return S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(bucket)
                .prefix("p")
                .pathStyle(true)
                .build();
    }

    private static List<Consumer<S3ObjectTarget>> everyOperation() {
        return List.of(
                t -> t.putIfAbsent("chunks/k", new byte[] {1}),
                t -> t.get("chunks/k"),
                t -> t.exists("chunks/k"),
                t -> t.list("chunks/"),
                t -> t.delete("chunks/k"));
    }

    @Test
    void aWrongSecretIsPermanentAndNoMessageHoldsTheSecret() {
        String wrongSecret = "wrong-" + s3.secretKey();
        try (S3ObjectTarget target =
                S3ObjectTarget.create(config(BUCKET), S3Credentials.of(s3.accessKey(), wrongSecret))) {
            for (Consumer<S3ObjectTarget> operation : everyOperation()) {
                PermanentException e = catchThrowableOfType(PermanentException.class, () -> operation.accept(target));

                assertThat(e).as("a wrong secret must fail every operation").isNotNull();
                assertThat(e.getMessage())
                        .contains("HTTP 403")
                        .contains("s3://" + BUCKET + "/p/chunks/")
                        .contains("127.0.0.1:" + s3.port())
                        .contains("the secret key this target was given")
                        .contains(s3.accessKey());
                assertNoSecretIn(e, wrongSecret);
                assertNoSecretIn(e, s3.secretKey());
            }
            assertThat(target.credentials().toString())
                    .doesNotContain(wrongSecret)
                    .contains("secretAccessKey=***");
            assertThat(target.describe()).doesNotContain(wrongSecret);
        }
    }

    @Test
    void anUnknownAccessKeyIsPermanent() {
        try (S3ObjectTarget target =
                S3ObjectTarget.create(config(BUCKET), S3Credentials.of("AKIDUNKNOWN", s3.secretKey()))) {
            PermanentException e = catchThrowableOfType(PermanentException.class, () -> target.get("chunks/k"));

            assertThat(e).isNotNull();
            assertThat(e.getMessage()).contains("HTTP 403").contains("AKIDUNKNOWN");
            assertNoSecretIn(e, s3.secretKey());
        }
    }

    @Test
    void aMissingBucketIsPermanentAndSaysSo() {
        try (S3ObjectTarget target =
                S3ObjectTarget.create(config("no-such-bucket"), S3Credentials.of(s3.accessKey(), s3.secretKey()))) {
            PermanentException e = catchThrowableOfType(
                    PermanentException.class, () -> target.putIfAbsent("chunks/k", new byte[] {1}));

            assertThat(e).isNotNull();
            assertThat(e.getMessage())
                    .contains("HTTP 404 NoSuchBucket")
                    .contains("Create bucket 'no-such-bucket' at 127.0.0.1:" + s3.port());
            assertThat(catchThrowableOfType(PermanentException.class, () -> target.list("")))
                    .isNotNull();
        }
    }

    @Test
    void aStoppedEndpointIsRetriable() {
        EmbeddedS3 doomed = EmbeddedS3.builder().build().start();
        doomed.createBucket(BUCKET);
        S3TargetSpec config = S3TargetSpec.builder()
                .endpoint(doomed.endpoint())
                .region(doomed.region())
                .bucket(BUCKET)
                .prefix("p")
                .pathStyle(true)
                .build();
        try (S3ObjectTarget target =
                S3ObjectTarget.create(config, S3Credentials.of(doomed.accessKey(), doomed.secretKey()))) {
            assertThat(target.putIfAbsent("chunks/k", new byte[] {1})).isTrue();
            int port = doomed.port();
            doomed.close();

            for (Consumer<S3ObjectTarget> operation : everyOperation()) {
                RetriableException e = catchThrowableOfType(RetriableException.class, () -> operation.accept(target));

                assertThat(e).as("a stopped endpoint must fail every operation").isNotNull();
                assertThat(e.getMessage()).contains("cannot reach the endpoint").contains("127.0.0.1:" + port);
                assertNoSecretIn(e, doomed.secretKey());
            }
        } finally {
            doomed.close();
        }
    }

    private static void assertNoSecretIn(TidemarkException e, String secret) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            assertThat(t.toString()).doesNotContain(secret);
            for (Throwable suppressed : t.getSuppressed()) {
                assertThat(suppressed.toString()).doesNotContain(secret);
            }
        }
    }
}

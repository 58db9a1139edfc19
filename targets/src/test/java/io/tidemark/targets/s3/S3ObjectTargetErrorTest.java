package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.targets.S3TargetSpec;
import java.net.ConnectException;
import java.net.URI;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.core.ResponseBytes;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.DeleteObjectRequest;
import software.amazon.awssdk.services.s3.model.DeleteObjectResponse;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectRequest;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.PutObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;

/** Error translation for faults S3Proxy cannot produce (throttling, 5xx, timeouts), with a failing fake client. */
class S3ObjectTargetErrorTest {

    private static final String SECRET = "very-secret-key-value";
    private static final S3TargetSpec CONFIG = S3TargetSpec.builder()
            .endpoint(URI.create("https://s3.example.net:9000"))
            .region("eu-central-1")
            .bucket("bucket")
            .prefix("prefix")
            .pathStyle(true)
            .build();
    private static final S3Credentials CREDENTIALS = S3Credentials.of("AKIDEXAMPLE", SECRET);

    static Stream<Arguments> faults() {
        return Stream.of(
                Arguments.of(service(503, "SlowDown"), RetriableException.class, "HTTP 503 SlowDown"),
                Arguments.of(service(429, "TooManyRequests"), RetriableException.class, "HTTP 429"),
                Arguments.of(service(500, "InternalError"), RetriableException.class, "HTTP 500"),
                Arguments.of(service(400, "RequestTimeout"), RetriableException.class, "RequestTimeout"),
                Arguments.of(service(409, "ConditionalRequestConflict"), RetriableException.class, "HTTP 409"),
                Arguments.of(
                        SdkClientException.builder()
                                .message("Unable to execute HTTP request")
                                .cause(new ConnectException("Connection refused"))
                                .build(),
                        RetriableException.class,
                        "cannot reach the endpoint"),
                Arguments.of(
                        ApiCallTimeoutException.builder().message("timed out").build(),
                        RetriableException.class,
                        "cannot reach the endpoint"),
                Arguments.of(
                        service(403, "SignatureDoesNotMatch"),
                        PermanentException.class,
                        "the secret key this target was given"),
                Arguments.of(service(403, "AccessDenied"), PermanentException.class, "AKIDEXAMPLE"),
                Arguments.of(service(404, "NoSuchBucket"), PermanentException.class, "Create bucket 'bucket'"),
                Arguments.of(service(400, "InvalidArgument"), PermanentException.class, "set ossCompatible"),
                Arguments.of(service(403, "RequestTimeTooSkewed"), PermanentException.class, "NTP"),
                Arguments.of(service(400, "AuthorizationHeaderMalformed"), PermanentException.class, "region"),
                Arguments.of(
                        SdkClientException.builder().message("bad config").build(),
                        PermanentException.class,
                        "Check the target configuration"));
    }

    @ParameterizedTest(name = "{2}")
    @MethodSource("faults")
    void faultsAreTranslatedWithEndpointBucketAndKey(
            SdkException fault, Class<? extends TidemarkException> kind, String expected) {
        try (S3ObjectTarget target = new S3ObjectTarget(CONFIG, CREDENTIALS, new FailingS3Client(() -> fault))) {
            assertThatThrownBy(() -> target.get("chunks/k"))
                    .isInstanceOf(kind)
                    .hasMessageContaining(expected)
                    .hasMessageContaining("s3://bucket/prefix/chunks/k")
                    .hasMessageContaining("s3.example.net:9000")
                    .hasMessageNotContaining(SECRET)
                    .hasCause(fault);
            assertThatThrownBy(() -> target.putIfAbsent("chunks/k", new byte[] {1}))
                    .isInstanceOf(kind);
            assertThatThrownBy(() -> target.list("chunks/")).isInstanceOf(kind);
            assertThatThrownBy(() -> target.delete("chunks/k")).isInstanceOf(kind);
        }
    }

    @Test
    void aRefusedSecretNamesWhereTheKeysCameFrom() {
        S3Credentials from =
                new S3Credentials("AKIDEXAMPLE", SECRET, "from the file /etc/tm/s3.secret, set by secretKeyFile");
        try (S3ObjectTarget target =
                new S3ObjectTarget(CONFIG, from, new FailingS3Client(() -> service(403, "SignatureDoesNotMatch")))) {
            assertThatThrownBy(() -> target.get("chunks/k"))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("the secret key (from the file /etc/tm/s3.secret, set by secretKeyFile)")
                    .hasMessageNotContaining("TIDEMARK_S3_SECRET_KEY")
                    .hasMessageNotContaining(SECRET);
        }
    }

    @Test
    void aFailedPreconditionMeansTheObjectIsPresent() {
        try (S3ObjectTarget target = new S3ObjectTarget(
                CONFIG, CREDENTIALS, new FailingS3Client(() -> service(412, "PreconditionFailed")))) {
            assertThat(target.putIfAbsent("chunks/k", new byte[] {1})).isFalse();
        }
    }

    @Test
    void aMissingKeyIsNotAnError() {
        try (S3ObjectTarget target =
                new S3ObjectTarget(CONFIG, CREDENTIALS, new FailingS3Client(() -> service(404, "NoSuchKey")))) {
            assertThat(target.get("chunks/k")).isEmpty();
            assertThat(target.exists("chunks/k")).isFalse();
            target.delete("chunks/k");
        }
    }

    @Test
    void theSecretIsRedactedEvenIfAServerEchoesIt() {
        S3Exception echo = service(400, "InvalidRequest", "bad header near " + SECRET);
        try (S3ObjectTarget target = new S3ObjectTarget(CONFIG, CREDENTIALS, new FailingS3Client(() -> echo))) {
            assertThatThrownBy(() -> target.get("k"))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("bad header near ***")
                    .hasMessageNotContaining(SECRET);
        }
    }

    private static S3Exception service(int status, String code) {
        return service(status, code, "injected " + code);
    }

    private static S3Exception service(int status, String code, String message) {
        return (S3Exception) S3Exception.builder()
                .statusCode(status)
                .message(message)
                .awsErrorDetails(AwsErrorDetails.builder()
                        .errorCode(code)
                        .errorMessage(message)
                        .serviceName("S3")
                        .build())
                .build();
    }

    /** An S3 client whose every object call throws the given fault. */
    private record FailingS3Client(Supplier<SdkException> fault) implements S3Client {

        @Override
        public PutObjectResponse putObject(PutObjectRequest request, RequestBody body) {
            throw fault.get();
        }

        @Override
        public ResponseBytes<GetObjectResponse> getObjectAsBytes(GetObjectRequest request) {
            throw fault.get();
        }

        @Override
        public HeadObjectResponse headObject(HeadObjectRequest request) {
            throw fault.get();
        }

        @Override
        public ListObjectsV2Response listObjectsV2(ListObjectsV2Request request) {
            throw fault.get();
        }

        @Override
        public DeleteObjectResponse deleteObject(DeleteObjectRequest request) {
            throw fault.get();
        }

        @Override
        public String serviceName() {
            return "s3";
        }

        @Override
        public void close() {}
    }
}

package io.tidemark.replicator.s3;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.target.ObjectTarget;
import java.io.IOException;
import java.net.URI;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.ResponseBytes;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * An {@link ObjectTarget} on a key prefix of an S3 bucket, through aws-sdk-java-v2: AWS S3, Ceph
 * RGW, S3Proxy, MinIO and Alibaba OSS (with {@link S3TargetConfig#ossCompatible()}). Key {@code k}
 * is the S3 key {@code keyPrefix + k}.
 *
 * <p>Contract beyond the port:
 *
 * <ul>
 *   <li>{@link #putIfAbsent} is one conditional PUT ({@code If-None-Match: *}; 412 means present)
 *       carrying {@code x-amz-checksum-sha256} of the bytes, so the server rejects a body damaged
 *       in transit. It is atomic and exclusive.
 *   <li>In {@code ossCompatible} mode OSS offers no conditional writes through its S3 API, so
 *       {@link #putIfAbsent} is a HEAD followed by a plain PUT with {@code Content-MD5}: still
 *       atomic for readers and idempotent, but <b>not exclusive</b>. Two writers racing on one key
 *       may both return true and the later PUT wins. Harmless for content-addressed chunks and
 *       uniquely named manifests; do not build locks on it.
 *   <li>Keys are validated like the other adapters: no empty, absolute, {@code .} or {@code ..}
 *       segments.
 *   <li>A HEAD cannot tell a missing bucket from a missing key, so {@link #exists} on a missing
 *       bucket answers false; every other call reports the missing bucket.
 *   <li>Errors: 5xx, throttling (429, 503 SlowDown), request timeouts, a corrupted upload
 *       (BadDigest), timeouts and connection failures are {@link RetriableException}s; other 4xx
 *       (403, missing bucket, 400, 501) are {@link PermanentException}s naming the endpoint, bucket
 *       and key and what to check. No message contains the secret key.
 *   <li>The SDK's default retry strategy (a few attempts with backoff, well under a second for a
 *       refused connection) runs inside each call; retries to a deadline belong to the caller's
 *       retry wrapper.
 * </ul>
 *
 * <p>Thread-safe.
 */
public final class S3ObjectTarget implements ObjectTarget {

    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration SOCKET_TIMEOUT = Duration.ofSeconds(60);
    private static final Set<String> RETRIABLE_CODES = Set.of(
            "SlowDown",
            "Throttling",
            "ThrottlingException",
            "RequestTimeout",
            "RequestTimeoutException",
            "InternalError",
            "ServiceUnavailable",
            "BadDigest",
            "XAmzContentSHA256Mismatch",
            "ConditionalRequestConflict",
            "OperationAborted");

    private final S3TargetConfig config;
    private final S3Client s3;
    private final boolean ownsClient;
    private final String description;

    /**
     * A target using {@code s3}, which stays the caller's to close; for tests and for sharing one
     * client between targets. {@code s3} must be configured to match {@code config}.
     */
    public S3ObjectTarget(S3TargetConfig config, S3Client s3) {
        this(config, s3, false);
    }

    private S3ObjectTarget(S3TargetConfig config, S3Client s3, boolean ownsClient) {
        this.config = Objects.requireNonNull(config, "config");
        this.s3 = Objects.requireNonNull(s3, "s3");
        this.ownsClient = ownsClient;
        this.description = describe(config);
    }

    /** A target with its own {@link S3Client} built from {@code config}; {@link #close()} closes it. */
    public static S3ObjectTarget create(S3TargetConfig config) {
        return new S3ObjectTarget(config, clientBuilder(config).build(), true);
    }

    /**
     * The client settings {@link #create} uses: static credentials, the Apache 5 HTTP client with
     * connect and socket timeouts, path or virtual-hosted style, and in {@code ossCompatible} mode
     * no aws-chunked encoding and checksums only when required.
     */
    static S3ClientBuilder clientBuilder(S3TargetConfig config) {
        S3ClientBuilder builder = S3Client.builder()
                .region(Region.of(config.region()))
                .credentialsProvider(StaticCredentialsProvider.create(
                        AwsBasicCredentials.create(config.accessKeyId(), config.secretAccessKey())))
                .httpClientBuilder(Apache5HttpClient.builder()
                        .connectionTimeout(CONNECT_TIMEOUT)
                        .socketTimeout(SOCKET_TIMEOUT))
                .serviceConfiguration(S3Configuration.builder()
                        .pathStyleAccessEnabled(config.pathStyle())
                        .chunkedEncodingEnabled(!config.ossCompatible())
                        .build());
        if (config.endpoint() != null) {
            builder.endpointOverride(config.endpoint());
        }
        if (config.ossCompatible()) {
            builder.requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                    .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        }
        return builder;
    }

    /** The settings this target was made with. */
    public S3TargetConfig config() {
        return config;
    }

    /** {@code s3://bucket/prefix (endpoint host[:port])}; never holds credentials. */
    @Override
    public String describe() {
        return description;
    }

    /**
     * Stores the object with a conditional PUT and a SHA-256 checksum; in {@code ossCompatible}
     * mode with HEAD then PUT and Content-MD5, which is not exclusive (see the class Javadoc).
     */
    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        String s3Key = s3Key(key);
        if (config.ossCompatible()) {
            if (head(key, s3Key)) {
                return false;
            }
            put(key, s3Key, data, false);
            return true;
        }
        try {
            put(key, s3Key, data, true);
            return true;
        } catch (AwsServiceException e) {
            if (e.statusCode() == 412) {
                return false;
            }
            throw translate("write", key, e);
        }
    }

    @Override
    public Optional<byte[]> get(String key) {
        String s3Key = s3Key(key);
        try {
            ResponseBytes<GetObjectResponse> bytes =
                    s3.getObjectAsBytes(r -> r.bucket(config.bucket()).key(s3Key));
            return Optional.of(bytes.asByteArrayUnsafe());
        } catch (NoSuchKeyException e) {
            return Optional.empty();
        } catch (SdkException e) {
            if (isMissingKey(e)) {
                return Optional.empty();
            }
            throw translate("read", key, e);
        }
    }

    @Override
    public boolean exists(String key) {
        return head(key, s3Key(key));
    }

    @Override
    public List<String> list(String prefix) {
        Objects.requireNonNull(prefix, "prefix");
        if (prefix.startsWith("/")) {
            throw new PermanentException("invalid list prefix '" + prefix + "' for " + description
                    + ": it is absolute; prefixes are relative to the target (a bug in the caller)");
        }
        String keyPrefix = config.keyPrefix();
        List<String> keys = new ArrayList<>();
        try {
            for (S3Object object : s3.listObjectsV2Paginator(
                            r -> r.bucket(config.bucket()).prefix(keyPrefix + prefix))
                    .contents()) {
                String key = object.key().substring(keyPrefix.length());
                if (!key.endsWith("/")) { // "folder" markers made by consoles are not objects
                    keys.add(key);
                }
            }
        } catch (SdkException e) {
            throw translate("list", prefix + "*", e);
        }
        Collections.sort(keys); // S3 sorts by UTF-8 bytes; the port promises String order
        return keys;
    }

    @Override
    public void delete(String key) {
        String s3Key = s3Key(key);
        try {
            s3.deleteObject(r -> r.bucket(config.bucket()).key(s3Key));
        } catch (SdkException e) {
            if (isMissingKey(e)) {
                return;
            }
            throw translate("delete", key, e);
        }
    }

    /** Closes the client if {@link #create} made it; a client passed in stays open. */
    @Override
    public void close() {
        if (ownsClient) {
            s3.close();
        }
    }

    @Override
    public String toString() {
        return description;
    }

    private void put(String key, String s3Key, byte[] data, boolean conditional) {
        PutObjectRequest.Builder request =
                PutObjectRequest.builder().bucket(config.bucket()).key(s3Key).contentLength((long) data.length);
        if (conditional) {
            request.ifNoneMatch("*");
        }
        if (config.ossCompatible()) {
            request.contentMD5(base64Digest("MD5", data));
        } else {
            request.checksumSHA256(base64Digest("SHA-256", data));
        }
        if (config.storageClass() != null) {
            request.storageClass(config.storageClass());
        }
        try {
            s3.putObject(request.build(), RequestBody.fromBytes(data));
        } catch (AwsServiceException e) {
            if (conditional && e.statusCode() == 412) {
                throw e; // the caller's answer, not an error
            }
            throw translate("write", key, e);
        } catch (SdkException e) {
            throw translate("write", key, e);
        }
    }

    private boolean head(String key, String s3Key) {
        try {
            s3.headObject(r -> r.bucket(config.bucket()).key(s3Key));
            return true;
        } catch (NoSuchKeyException e) {
            return false;
        } catch (SdkException e) {
            if (isMissingKey(e)) {
                return false;
            }
            throw translate("look up", key, e);
        }
    }

    /** A 404 that is about the key, not the bucket. */
    private static boolean isMissingKey(SdkException e) {
        return e instanceof AwsServiceException se && se.statusCode() == 404 && !"NoSuchBucket".equals(errorCode(se));
    }

    private String s3Key(String key) {
        if (key == null || key.isEmpty() || key.startsWith("/")) {
            throw invalidKey(key, "keys are relative and non-empty");
        }
        for (String segment : key.split("/", -1)) {
            if (segment.isEmpty()) {
                throw invalidKey(key, "it has an empty segment (a leading, trailing or doubled '/')");
            }
            if (segment.equals(".") || segment.equals("..")) {
                throw invalidKey(key, "it has a '" + segment + "' segment");
            }
        }
        return config.keyPrefix() + key;
    }

    private PermanentException invalidKey(String key, String why) {
        return new PermanentException(
                "invalid object key '" + key + "' for " + description + ": " + why + " (a bug in the caller)");
    }

    /** Turns an SDK exception into one of the two kinds callers branch on. */
    private TidemarkException translate(String action, String key, SdkException e) {
        String what = "S3 " + action + " of " + config.location() + key + " at " + endpointName() + " failed";
        if (e instanceof AwsServiceException se) {
            int status = se.statusCode();
            String code = errorCode(se);
            String detail = what + ": HTTP " + status + (code == null ? "" : " " + code) + message(se);
            if (status >= 500
                    || status == 408
                    || status == 429
                    || se.isThrottlingException()
                    || (code != null && RETRIABLE_CODES.contains(code))) {
                return new RetriableException(redact(detail + " (transient; retry with backoff)"), e);
            }
            return new PermanentException(redact(detail + ". " + hint(status, code)), e);
        }
        if (e instanceof ApiCallTimeoutException
                || e instanceof ApiCallAttemptTimeoutException
                || e instanceof AbortedException
                || hasIoCause(e)) {
            return new RetriableException(
                    redact(what + ": cannot reach the endpoint (" + rootCause(e) + "); retry with backoff"), e);
        }
        return new PermanentException(
                redact(what + ": " + e.getMessage() + ". Check the target configuration (endpoint, region,"
                        + " bucket, path style)"),
                e);
    }

    private String hint(int status, String code) {
        String bucket = "bucket '" + config.bucket() + "'";
        if ("NoSuchBucket".equals(code) || (status == 404 && code == null)) {
            return "Create " + bucket + " at " + endpointName() + " or correct the bucket name";
        }
        if ("RequestTimeTooSkewed".equals(code)) {
            return "The clock of this host is off; synchronise it (NTP)";
        }
        if ("AuthorizationHeaderMalformed".equals(code) || "PermanentRedirect".equals(code) || status == 301) {
            return "Set the region to the one " + bucket + " lives in (configured: " + config.region() + ")";
        }
        if ("SecondLevelDomainForbidden".equals(code)) {
            return "This server (Alibaba OSS) needs virtual-hosted-style requests: set ossCompatible and turn"
                    + " path style off";
        }
        if (status == 403) {
            return "Check the access key id '" + config.accessKeyId()
                    + "' and the secret in TIDEMARK_S3_SECRET_KEY_FILE, and that the key may read and write "
                    + config.location();
        }
        if (status == 501 || "NotImplemented".equals(code)) {
            return "The server does not support this request (conditional writes?); for Alibaba OSS set"
                    + " ossCompatible";
        }
        if ("InvalidArgument".equals(code) && !config.ossCompatible()) {
            return "If this is Alibaba OSS (aws-chunked uploads are refused there), set ossCompatible";
        }
        return "Check the target configuration (endpoint, region, bucket, storage class)";
    }

    private static String errorCode(AwsServiceException e) {
        return e.awsErrorDetails() == null ? null : e.awsErrorDetails().errorCode();
    }

    private static String message(AwsServiceException e) {
        String message =
                e.awsErrorDetails() == null ? null : e.awsErrorDetails().errorMessage();
        return message == null || message.isBlank() ? "" : " (" + message + ")";
    }

    private static boolean hasIoCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof IOException) {
                return true;
            }
        }
        return false;
    }

    private static String rootCause(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.toString();
    }

    /**
     * Defence in depth: no message leaves this class with the secret in it. (Secrets shorter than 8
     * characters are test values; replacing them would garble the message.)
     */
    private String redact(String message) {
        String secret = config.secretAccessKey();
        return secret.length() < 8 ? message : message.replace(secret, "***");
    }

    private String endpointName() {
        return endpointName(config);
    }

    private static String endpointName(S3TargetConfig config) {
        URI endpoint = config.endpoint();
        if (endpoint == null) {
            return "AWS " + config.region();
        }
        return endpoint.getPort() < 0 ? endpoint.getHost() : endpoint.getHost() + ":" + endpoint.getPort();
    }

    private static String describe(S3TargetConfig config) {
        return config.location() + " (" + endpointName(config) + (config.ossCompatible() ? ", OSS-compatible" : "")
                + ")";
    }

    private static String base64Digest(String algorithm, byte[] data) {
        try {
            return Base64.getEncoder()
                    .encodeToString(MessageDigest.getInstance(algorithm).digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " is required of every Java platform", e);
        }
    }
}

package io.tidemark.targets.s3;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.core.target.TargetKeys;
import io.tidemark.format.ObjectKeys;
import io.tidemark.targets.S3TargetSpec;
import java.io.IOException;
import java.net.URI;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
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
import software.amazon.awssdk.http.ContentStreamProvider;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.ObjectLockLegalHoldStatus;
import software.amazon.awssdk.services.s3.model.ObjectLockMode;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.Tag;
import software.amazon.awssdk.services.s3.model.Tier;

/**
 * An {@link ObjectTarget} on a key prefix of an S3 bucket, through aws-sdk-java-v2: AWS S3, Ceph
 * RGW, S3Proxy, MinIO and Alibaba OSS (with {@link S3TargetSpec#ossCompatible()}). Key {@code k}
 * is the S3 key {@code keyPrefix + k}.
 *
 * <p>Contract beyond the port:
 *
 * <ul>
 *   <li>{@link #putIfAbsent} is one conditional PUT ({@code If-None-Match: *}; 412 means present)
 *       carrying the SDK's default {@code x-amz-checksum-crc32} of the bytes, so the server rejects
 *       a body damaged in transit. It is atomic and exclusive. CRC32, not SHA-256: the checksum only
 *       has to catch transit damage, which CRC32 does as well; every object is named by the SHA-256
 *       (or HMAC) of its content and verified against that name on every read, which is what
 *       guarantees integrity end to end. A SHA-256 checksum cost one more hash of every body on the
 *       client (docs/benchmarks.md §2).
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
 *   <li>With {@link S3TargetSpec#objectLock()} every object outside {@code state/} (see {@link
 *       ObjectKeys#STATE}) is written with {@code x-amz-object-lock-mode} and {@code
 *       x-amz-object-lock-retain-until-date} = now (this target's clock) + the period; {@code
 *       state/} holds mutable state and is never locked. The bucket must have Object Lock enabled,
 *       which also makes it versioned: {@link #delete} then only adds a delete marker, and the
 *       locked version stays (and is billed) until its retention ends and something removes it
 *       (e.g. a lifecycle rule for noncurrent versions). Prune asks {@link #isLocked} first.
 *   <li>Ceph RGW 16 ignores {@code If-None-Match: *} on versioned buckets (every PUT adds a
 *       version; unversioned buckets honour it). So with Object Lock {@link #putIfAbsent} first
 *       asks with a HEAD, then sends the conditional PUT: on AWS S3 still exclusive, on RGW
 *       <b>not exclusive</b> — two writers racing on one key may both return true and leave two
 *       locked versions, the later one current. Harmless for content-addressed chunks and uniquely
 *       named manifests; do not build locks on a locked bucket's {@code state/} through RGW.
 *   <li>Bodies are sent without aws-chunked encoding: they are byte arrays, so the SDK signs the
 *       payload hash up front. RGW 16 (Pacific) refuses an empty aws-chunked body
 *       (XAmzContentSHA256Mismatch) and OSS refuses aws-chunked altogether. RGW 16 also ignores
 *       {@code x-amz-checksum-*}; over plain HTTP the signed payload hash still protects the
 *       body, over HTTPS TLS does.
 * </ul>
 *
 * <p>Thread-safe.
 */
public final class S3ObjectTarget implements ObjectTarget, ColdStorage {

    /** Storage classes whose objects must be restored before a GET. */
    static final Set<String> ARCHIVE_CLASSES = Set.of("GLACIER", "DEEP_ARCHIVE");

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

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(S3ObjectTarget.class);

    private final S3TargetSpec config;
    private final S3Credentials credentials;
    private final S3Client s3;
    private final boolean ownsClient;
    private final Clock clock;
    private final String description;

    /**
     * Whether this store really archives its archive-named classes: unknown until the first object
     * in one is probed (a 1-byte ranged GET, {@link #servesBytes}); Ceph RGW's GLACIER classes are
     * ordinary pools, so there an archived-looking object is {@link Readability#READABLE} and needs
     * no restore (a RestoreObject answers 501). Per target instance; a store does not change kind.
     */
    private volatile Boolean archives;

    /**
     * A target using {@code s3}, which stays the caller's to close; for tests and for sharing one
     * client between targets. {@code s3} must be configured to match {@code spec} and {@code
     * credentials}.
     */
    public S3ObjectTarget(S3TargetSpec spec, S3Credentials credentials, S3Client s3) {
        this(spec, credentials, s3, Clock.systemUTC());
    }

    /**
     * A target using {@code s3}, which stays the caller's to close, and {@code clock} for Object
     * Lock retain-until dates and {@link #isLocked}.
     */
    public S3ObjectTarget(S3TargetSpec spec, S3Credentials credentials, S3Client s3, Clock clock) {
        this(spec, credentials, s3, false, clock);
    }

    private S3ObjectTarget(S3TargetSpec spec, S3Credentials credentials, S3Client s3, boolean ownsClient, Clock clock) {
        this.config = Objects.requireNonNull(spec, "spec");
        this.credentials = Objects.requireNonNull(credentials, "credentials");
        this.s3 = Objects.requireNonNull(s3, "s3");
        this.ownsClient = ownsClient;
        this.clock = Objects.requireNonNull(clock, "clock");
        this.description = describe(spec);
    }

    /** A target with its own {@link S3Client} built from the settings; {@link #close()} closes it. */
    public static S3ObjectTarget create(S3TargetSpec spec, S3Credentials credentials) {
        return create(spec, credentials, Clock.systemUTC());
    }

    /** Like {@link #create(S3TargetSpec, S3Credentials)}, with {@code clock} for Object Lock dates. */
    public static S3ObjectTarget create(S3TargetSpec spec, S3Credentials credentials, Clock clock) {
        return new S3ObjectTarget(
                spec,
                credentials,
                clientBuilder(spec, credentials, Timeouts.DEFAULT).build(),
                true,
                clock);
    }

    /** Like {@link #create(S3TargetSpec, S3Credentials)}, with the client's timeouts set by {@code timeouts}. */
    public static S3ObjectTarget create(S3TargetSpec spec, S3Credentials credentials, Timeouts timeouts) {
        return new S3ObjectTarget(
                spec, credentials, clientBuilder(spec, credentials, timeouts).build(), true, Clock.systemUTC());
    }

    /**
     * The client settings {@link #create} uses: static credentials, the Apache 5 HTTP client with
     * connect and socket timeouts, path or virtual-hosted style, no aws-chunked encoding (see the
     * class Javadoc), and in {@code ossCompatible} mode checksums only when required; for callers
     * that adjust more (a test turning the SDK's own retries off, say) and build the client
     * themselves.
     */
    public static S3ClientBuilder clientBuilder(S3TargetSpec config, S3Credentials credentials, Timeouts timeouts) {
        S3ClientBuilder builder = S3Client.builder()
                .region(Region.of(config.region()))
                .credentialsProvider(StaticCredentialsProvider.create(
                        AwsBasicCredentials.create(credentials.accessKeyId(), credentials.secretAccessKey())))
                .httpClientBuilder(Apache5HttpClient.builder()
                        .connectionTimeout(timeouts.connect() != null ? timeouts.connect() : CONNECT_TIMEOUT)
                        .socketTimeout(timeouts.socket() != null ? timeouts.socket() : SOCKET_TIMEOUT))
                .serviceConfiguration(S3Configuration.builder()
                        .pathStyleAccessEnabled(config.pathStyle())
                        .chunkedEncodingEnabled(false)
                        .build());
        if (config.endpoint() != null) {
            builder.endpointOverride(config.endpoint());
        }
        if (timeouts.apiCallAttempt() != null || timeouts.apiCall() != null) {
            builder.overrideConfiguration(
                    o -> o.apiCallAttemptTimeout(timeouts.apiCallAttempt()).apiCallTimeout(timeouts.apiCall()));
        }
        if (config.ossCompatible()) {
            builder.requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                    .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        }
        return builder;
    }

    /** The settings this target was made with. */
    public S3TargetSpec spec() {
        return config;
    }

    /** The key pair this target signs with. */
    public S3Credentials credentials() {
        return credentials;
    }

    /** {@code s3://bucket/prefix (endpoint host[:port])}; never holds credentials. */
    @Override
    public String describe() {
        return description;
    }

    /**
     * Stores the object with a conditional PUT and a CRC32 checksum; in {@code ossCompatible}
     * mode with HEAD then PUT and Content-MD5, which is not exclusive (see the class Javadoc). With
     * Object Lock configured, keys outside {@code state/} are locked until now + the period.
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
        if (config.objectLock() != null && head(key, s3Key)) {
            return false; // see the class Javadoc: RGW ignores If-None-Match on versioned buckets
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

    /**
     * The retain-until date of the Object Lock retention on the current version of {@code key}, if
     * it has one; the date may be past. Empty for a missing key, an object without retention, a
     * bucket without Object Lock and a server without it (S3Proxy). One HEAD request.
     */
    @Override
    public Optional<Instant> retainUntil(String key) {
        return lockHeaders(key).map(HeadObjectResponse::objectLockRetainUntilDate);
    }

    /**
     * Whether the current version of {@code key} cannot be deleted now: its retention ends after
     * this target's clock's now, or it has a legal hold. Prune skips such objects (a plain delete
     * would only hide them behind a delete marker). One HEAD request; false for a missing key.
     */
    public boolean isLocked(String key) {
        Instant now = clock.instant();
        return lockHeaders(key)
                .filter(h -> h.objectLockLegalHoldStatus() == ObjectLockLegalHoldStatus.ON
                        || (h.objectLockRetainUntilDate() != null
                                && h.objectLockRetainUntilDate().isAfter(now)))
                .isPresent();
    }

    /** Whether {@link #putIfAbsent} locks {@code key}: Object Lock is configured and it is not state. */
    boolean locks(String key) {
        return config.objectLock() != null && !key.startsWith(ObjectKeys.STATE);
    }

    @Override
    public List<String> list(String prefix) {
        Objects.requireNonNull(prefix, "prefix");
        if (prefix.startsWith("/")) {
            throw new PermanentException("invalid list prefix '" + prefix + "' for " + description
                    + ": it is absolute; prefixes are relative to the target (a bug in the caller)");
        }
        String keyPrefix = config.prefix();
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
    public Placement placement(String key) {
        String s3Key = s3Key(key);
        try {
            HeadObjectResponse head =
                    s3.headObject(r -> r.bucket(config.bucket()).key(s3Key));
            Placement p = placement(head.storageClassAsString(), head.restore());
            if (p.readability() == Readability.ARCHIVED && !archivesReally(key)) {
                return new Placement(p.storageClass(), Readability.READABLE, Optional.empty());
            }
            return p;
        } catch (SdkException e) {
            if (e instanceof NoSuchKeyException || isMissingKey(e)) {
                throw new PermanentException("no object " + config.location() + key + " at " + endpointName()
                        + " to look up the storage class of; check the key (was it pruned?)");
            }
            throw translate("look up the storage class of", key, e);
        }
    }

    /**
     * The placement a HEAD answers: {@code storageClass} (absent on STANDARD objects) and the
     * {@code x-amz-restore} header ({@code ongoing-request="true"} while restoring; {@code
     * ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"} once restored).
     */
    static Placement placement(String storageClass, String restoreHeader) {
        String sc = storageClass == null || storageClass.isBlank() ? "STANDARD" : storageClass;
        if (!ARCHIVE_CLASSES.contains(sc)) {
            return new Placement(sc, Readability.READABLE, Optional.empty());
        }
        if (restoreHeader == null || restoreHeader.isBlank()) {
            return new Placement(sc, Readability.ARCHIVED, Optional.empty());
        }
        if (restoreHeader.replace(" ", "").contains("ongoing-request=\"true\"")) {
            return new Placement(sc, Readability.RESTORING, Optional.empty());
        }
        java.util.regex.Matcher m =
                java.util.regex.Pattern.compile("expiry-date=\"([^\"]+)\"").matcher(restoreHeader);
        Optional<Instant> until = m.find()
                ? Optional.of(
                        java.time.ZonedDateTime.parse(m.group(1), java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME)
                                .toInstant())
                : Optional.empty();
        return new Placement(sc, Readability.RESTORED, until);
    }

    /**
     * Whether this store's archive-named classes really archive: asked of the first archived-looking
     * object (a 1-byte GET), then remembered. A GET refused with InvalidObjectState (AWS) means yes.
     */
    private boolean archivesReally(String key) {
        Boolean known = archives;
        if (known == null) {
            known = !servesBytes(key);
            archives = known;
            if (!known) {
                log.debug(
                        "{} serves objects of its archive-named classes as they are (no archive tier, as Ceph RGW):"
                                + " they need no restore",
                        endpointName());
            }
        }
        return known;
    }

    /** Whether a 1-byte ranged GET of {@code key} serves bytes (false when the store refuses: archived). */
    private boolean servesBytes(String key) {
        String s3Key = s3Key(key);
        try {
            return s3.getObjectAsBytes(r -> r.bucket(config.bucket()).key(s3Key).range("bytes=0-0"))
                            .asByteArray()
                            .length
                    > 0;
        } catch (AwsServiceException e) {
            if (e.statusCode() == 403 && "InvalidObjectState".equals(errorCode(e))) {
                return false; // archived: a GET needs a restore first
            }
            if (e.statusCode() == 416) {
                return true; // an empty object: readable, nothing to serve
            }
            throw translate("read", key, e);
        } catch (SdkException e) {
            throw translate("read", key, e);
        }
    }

    @Override
    public void requestRestore(String key, int days) {
        String s3Key = s3Key(key);
        try {
            s3.restoreObject(r -> r.bucket(config.bucket()).key(s3Key).restoreRequest(q -> q.days(days)
                    .glacierJobParameters(g -> g.tier(Tier.STANDARD))));
        } catch (AwsServiceException e) {
            if (e.statusCode() == 409 && "RestoreAlreadyInProgress".equals(errorCode(e))) {
                return; // asked before: idempotent
            }
            if (e.statusCode() == 501) { // Ceph RGW 16: no archive restore; asking again will not help
                if (servesBytes(key)) {
                    archives = false; // readable as it is: nothing to restore, here or for any other object
                    return;
                }
                throw new PermanentException("S3 restore of " + config.location() + key + " at " + endpointName()
                        + " failed: HTTP 501 NotImplemented, and the object cannot be read as it is either: this store"
                        + " cannot restore it; copy it back with the store's own tools (or read the point from"
                        + " another location), see docs/runbooks/cold-restore.md");
            }
            throw translate("restore", key, e);
        } catch (SdkException e) {
            throw translate("restore", key, e);
        }
    }

    @Override
    public void tagTier(String key, Optional<String> storageClass) {
        String s3Key = s3Key(key);
        try {
            List<Tag> others = new ArrayList<>(
                    s3.getObjectTagging(r -> r.bucket(config.bucket()).key(s3Key))
                            .tagSet());
            others.removeIf(t -> TIER_TAG.equals(t.key()));
            storageClass.ifPresent(
                    sc -> others.add(Tag.builder().key(TIER_TAG).value(sc).build()));
            s3.putObjectTagging(r -> r.bucket(config.bucket()).key(s3Key).tagging(t -> t.tagSet(others)));
        } catch (SdkException e) {
            throw translate("tag", key, e);
        }
    }

    @Override
    public void rewarm(String key) {
        String s3Key = s3Key(key);
        String sc = config.storageClass() != null ? config.storageClass() : "STANDARD";
        try {
            s3.copyObject(r -> r.sourceBucket(config.bucket())
                    .sourceKey(s3Key)
                    .destinationBucket(config.bucket())
                    .destinationKey(s3Key)
                    .storageClass(sc)
                    .metadataDirective(software.amazon.awssdk.services.s3.model.MetadataDirective.COPY)
                    .taggingDirective(software.amazon.awssdk.services.s3.model.TaggingDirective.COPY));
        } catch (SdkException e) {
            throw translate("copy back to " + sc, key, e);
        }
    }

    @Override
    public Optional<String> tierTag(String key) {
        String s3Key = s3Key(key);
        try {
            return s3.getObjectTagging(r -> r.bucket(config.bucket()).key(s3Key)).tagSet().stream()
                    .filter(t -> TIER_TAG.equals(t.key()))
                    .map(Tag::value)
                    .findFirst();
        } catch (SdkException e) {
            throw translate("read the tags of", key, e);
        }
    }

    /** The client this target talks through, for {@link S3TierRules}. */
    S3Client client() {
        return s3;
    }

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
        }
        // otherwise the SDK adds its default x-amz-checksum-crc32 (see the class Javadoc)
        if (config.storageClass() != null) {
            request.storageClass(config.storageClass());
        }
        if (locks(key)) {
            ObjectLockRetention lock = config.objectLock();
            request.objectLockMode(ObjectLockMode.fromValue(lock.mode().name()))
                    .objectLockRetainUntilDate(clock.instant().plus(lock.period()));
        }
        try {
            s3.putObject(request.build(), body(data));
        } catch (AwsServiceException e) {
            if (conditional && e.statusCode() == 412) {
                throw e; // the caller's answer, not an error
            }
            throw translate("write", key, e);
        } catch (SdkException e) {
            throw translate("write", key, e);
        }
    }

    /**
     * The request body over {@code data} itself, not a copy ({@link RequestBody#fromBytes} copies
     * every body once more: ~0.2 CPU-s per GiB, and as much garbage; docs/benchmarks.md §2). The
     * same body otherwise: known length, {@code application/octet-stream}, re-readable for the
     * payload hash, the checksum and retries. Safe because the call is synchronous and no caller
     * changes an array it is writing.
     */
    static RequestBody body(byte[] data) {
        return RequestBody.fromContentProvider(
                ContentStreamProvider.fromByteArrayUnsafe(data), data.length, "application/octet-stream");
    }

    /** The HEAD response of {@code key} if it has a retention date or a legal hold. */
    private Optional<HeadObjectResponse> lockHeaders(String key) {
        String s3Key = s3Key(key);
        try {
            HeadObjectResponse head =
                    s3.headObject(r -> r.bucket(config.bucket()).key(s3Key));
            return head.objectLockRetainUntilDate() != null
                            || head.objectLockLegalHoldStatus() == ObjectLockLegalHoldStatus.ON
                    ? Optional.of(head)
                    : Optional.empty();
        } catch (NoSuchKeyException e) {
            return Optional.empty();
        } catch (SdkException e) {
            if (isMissingKey(e)) {
                return Optional.empty();
            }
            throw translate("look up the retention of", key, e);
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
        return config.prefix() + TargetKeys.check(key, description);
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
            return "Check the access key id '" + credentials.accessKeyId() + "' and the secret key"
                    + (credentials.from() == null ? " this target was given" : " (" + credentials.from() + ")")
                    + ", and that the key may read and write " + config.location();
        }
        if (status == 501 || "NotImplemented".equals(code)) {
            return "The server does not support this request (conditional writes?); for Alibaba OSS set"
                    + " ossCompatible";
        }
        if (config.objectLock() != null && "InvalidRequest".equals(code)) {
            return "Object Lock is configured (objectLockMode), so " + bucket + " must have Object Lock enabled;"
                    + " it can only be enabled when a bucket is created: create one with it, or remove objectLockMode";
        }
        if ("InvalidArgument".equals(code) && !config.ossCompatible()) {
            return "If this is Alibaba OSS, set ossCompatible";
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
        String secret = credentials.secretAccessKey();
        return secret.length() < 8 ? message : message.replace(secret, "***");
    }

    private String endpointName() {
        return endpointName(config);
    }

    private static String endpointName(S3TargetSpec config) {
        URI endpoint = config.endpoint();
        if (endpoint == null) {
            return "AWS " + config.region();
        }
        return endpoint.getPort() < 0 ? endpoint.getHost() : endpoint.getHost() + ":" + endpoint.getPort();
    }

    private static String describe(S3TargetSpec config) {
        ObjectLockRetention lock = config.objectLock();
        return config.location() + " (" + endpointName(config) + (config.ossCompatible() ? ", OSS-compatible" : "")
                + (lock == null
                        ? ""
                        : ", Object Lock " + lock.mode() + " " + lock.period().toDays() + " d") + ")";
    }

    private static String base64Digest(String algorithm, byte[] data) {
        try {
            return Base64.getEncoder()
                    .encodeToString(MessageDigest.getInstance(algorithm).digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " is required of every Java platform", e);
        }
    }

    /**
     * How long the S3 client waits; a {@code null} leaves that setting at its default. Kept apart
     * from the location settings: the engine uses {@link #DEFAULT}, tests and benchmarks shorten
     * them.
     *
     * @param connect the TCP connect timeout (default 10 s)
     * @param socket the longest silence on an open connection (default 60 s)
     * @param apiCallAttempt the longest single HTTP attempt, after which the SDK abandons it (default
     *     none)
     * @param apiCall the longest call including the SDK's own retries (default none)
     */
    public record Timeouts(Duration connect, Duration socket, Duration apiCallAttempt, Duration apiCall) {

        /** Every setting at its default. */
        public static final Timeouts DEFAULT = new Timeouts(null, null, null, null);

        /** Validates: each timeout is {@code null} or positive. */
        public Timeouts {
            for (Duration d : new Duration[] {connect, socket, apiCallAttempt, apiCall}) {
                if (d != null && (d.isNegative() || d.isZero())) {
                    throw new PermanentException(
                            "invalid S3 target configuration: timeouts must be positive, got " + d);
                }
            }
        }
    }
}

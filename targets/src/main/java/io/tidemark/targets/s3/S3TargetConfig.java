package io.tidemark.targets.s3;

import io.tidemark.core.PermanentException;
import java.net.URI;
import java.time.Duration;

/**
 * Where and how {@link S3ObjectTarget} stores objects.
 *
 * @param endpoint the service endpoint, e.g. {@code https://s3.oss-cn-hangzhou.aliyuncs.com} or an
 *     RGW/S3Proxy URL; {@code null} for AWS's own endpoint of {@code region}
 * @param region the signing region, e.g. {@code eu-central-1}; for Alibaba OSS the region its S3
 *     documentation names for the endpoint
 * @param bucket the bucket, which must exist
 * @param keyPrefix the key space inside the bucket; {@code ""} for the whole bucket, otherwise
 *     normalised to end with {@code /}; never starts with {@code /}
 * @param pathStyle {@code http://endpoint/bucket/key} instead of {@code http://bucket.endpoint/key};
 *     needed by most self-hosted servers, refused by OSS
 * @param ossCompatible Alibaba OSS through its S3 API: virtual-hosted style, no aws-chunked
 *     encoding, checksums only where required, Content-MD5 instead of {@code x-amz-checksum-*}, and
 *     no conditional writes (see {@link S3ObjectTarget#putIfAbsent})
 * @param storageClass the storage class for new objects (e.g. {@code STANDARD_IA}); {@code null}
 *     for the bucket's default
 * @param accessKeyId the access key id; may appear in messages
 * @param secretAccessKey the secret key; never logged, never in messages or {@link #toString()}
 * @param objectLock the Object Lock retention to put on immutable objects (everything outside
 *     {@code state/}); {@code null} for none. Not available with {@code ossCompatible}
 * @param credentialsFrom where the key pair was read from, in words for error messages (e.g.
 *     {@code secretKeyFile /etc/tidemark/s3.secret of target 'offsite'}); never the secret itself;
 *     {@code null} when the caller gave the keys directly
 */
public record S3TargetConfig(
        URI endpoint,
        String region,
        String bucket,
        String keyPrefix,
        boolean pathStyle,
        boolean ossCompatible,
        String storageClass,
        String accessKeyId,
        String secretAccessKey,
        ObjectLockRetention objectLock,
        String credentialsFrom) {

    /** Validates the settings and normalises the key prefix; bad settings are permanent errors. */
    public S3TargetConfig {
        if (endpoint != null
                && (endpoint.getHost() == null
                        || !("http".equals(endpoint.getScheme()) || "https".equals(endpoint.getScheme())))) {
            throw invalid("endpoint '" + endpoint + "' is not an http(s) URL with a host");
        }
        if (region == null || region.isBlank()) {
            throw invalid("region is missing");
        }
        if (bucket == null || bucket.isBlank()) {
            throw invalid("bucket is missing");
        }
        keyPrefix = keyPrefix == null ? "" : keyPrefix;
        if (keyPrefix.startsWith("/")) {
            throw invalid("key prefix '" + keyPrefix + "' must not start with '/'");
        }
        if (!keyPrefix.isEmpty() && !keyPrefix.endsWith("/")) {
            keyPrefix = keyPrefix + "/";
        }
        if (ossCompatible && pathStyle) {
            throw invalid("Alibaba OSS accepts only virtual-hosted-style requests: turn path style off");
        }
        if (storageClass != null && storageClass.isBlank()) {
            storageClass = null;
        }
        if (accessKeyId == null || accessKeyId.isBlank()) {
            throw invalid("access key id is missing");
        }
        if (secretAccessKey == null || secretAccessKey.isEmpty()) {
            throw invalid("secret access key is missing (set TIDEMARK_S3_SECRET_KEY_FILE)");
        }
        if (objectLock != null && ossCompatible) {
            throw invalid("S3 Object Lock is not available through Alibaba OSS's S3 API: remove objectLockMode and"
                    + " use the bucket's OSS retention policy (WORM) instead");
        }
    }

    /** Settings whose keys were given directly (no {@code credentialsFrom}). */
    public S3TargetConfig(
            URI endpoint,
            String region,
            String bucket,
            String keyPrefix,
            boolean pathStyle,
            boolean ossCompatible,
            String storageClass,
            String accessKeyId,
            String secretAccessKey,
            ObjectLockRetention objectLock) {
        this(
                endpoint,
                region,
                bucket,
                keyPrefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                objectLock,
                null);
    }

    /** A copy saying where the keys came from, for error messages. */
    public S3TargetConfig withCredentialsFrom(String credentialsFrom) {
        return new S3TargetConfig(
                endpoint,
                region,
                bucket,
                keyPrefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                objectLock,
                credentialsFrom);
    }

    /** Settings without Object Lock. */
    public S3TargetConfig(
            URI endpoint,
            String region,
            String bucket,
            String keyPrefix,
            boolean pathStyle,
            boolean ossCompatible,
            String storageClass,
            String accessKeyId,
            String secretAccessKey) {
        this(
                endpoint,
                region,
                bucket,
                keyPrefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                null);
    }

    /** A copy with another key prefix. */
    public S3TargetConfig withKeyPrefix(String prefix) {
        return new S3TargetConfig(
                endpoint,
                region,
                bucket,
                prefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                objectLock,
                credentialsFrom);
    }

    /** A copy with another key pair. */
    public S3TargetConfig withCredentials(String accessKeyId, String secretAccessKey) {
        return new S3TargetConfig(
                endpoint,
                region,
                bucket,
                keyPrefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                objectLock);
    }

    /** A copy with another storage class ({@code null} for the bucket's default). */
    public S3TargetConfig withStorageClass(String storageClass) {
        return new S3TargetConfig(
                endpoint,
                region,
                bucket,
                keyPrefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                objectLock,
                credentialsFrom);
    }

    /** A copy with another Object Lock retention ({@code null} for none). */
    public S3TargetConfig withObjectLock(ObjectLockRetention objectLock) {
        return new S3TargetConfig(
                endpoint,
                region,
                bucket,
                keyPrefix,
                pathStyle,
                ossCompatible,
                storageClass,
                accessKeyId,
                secretAccessKey,
                objectLock,
                credentialsFrom);
    }

    /** {@code s3://bucket/prefix}, the location without endpoint. */
    public String location() {
        return "s3://" + bucket + "/" + keyPrefix;
    }

    /** Every setting except the secret, which is shown as {@code ***}. */
    @Override
    public String toString() {
        return "S3TargetConfig[endpoint=" + endpoint + ", region=" + region + ", bucket=" + bucket + ", keyPrefix="
                + keyPrefix + ", pathStyle=" + pathStyle + ", ossCompatible=" + ossCompatible + ", storageClass="
                + storageClass + ", accessKeyId=" + accessKeyId + ", secretAccessKey=***, objectLock=" + objectLock
                + ", credentialsFrom=" + credentialsFrom + "]";
    }

    private static PermanentException invalid(String why) {
        return new PermanentException("invalid S3 target configuration: " + why);
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
                    throw invalid("timeouts must be positive, got " + d);
                }
            }
        }
    }
}

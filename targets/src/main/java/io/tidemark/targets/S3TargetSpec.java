package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.s3.ObjectLockRetention;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import java.net.URI;

/**
 * {@code type: s3}: a bucket prefix on AWS S3, Alibaba OSS (through its S3 API), Ceph RGW or
 * another S3-compatible server.
 *
 * @param endpoint the service endpoint, for example {@code https://s3.oss-cn-hangzhou.aliyuncs.com}
 *     or an RGW URL; {@code null} for AWS's own endpoint of {@code region}
 * @param region the signing region; {@code null} for {@value #DEFAULT_REGION}
 * @param bucket the bucket, which must exist
 * @param prefix the key space inside the bucket; {@code ""} for the whole bucket, otherwise
 *     normalised to end with {@code /}; never starts with {@code /}
 * @param pathStyle {@code http://endpoint/bucket/key} instead of {@code http://bucket.endpoint/key};
 *     needed by most self-hosted servers, refused by OSS
 * @param ossCompatible Alibaba OSS through its S3 API: virtual-hosted style, no aws-chunked
 *     encoding, Content-MD5 instead of {@code x-amz-checksum-*}, no conditional writes
 * @param storageClass the storage class of new objects (for example {@code STANDARD_IA}); {@code
 *     null} for the bucket's default
 * @param accessKey where the access key id is read from; {@code null} when the caller passes the
 *     keys to {@link S3ObjectTarget} itself
 * @param secretKey where the secret key is read from; likewise
 * @param objectLock the S3 Object Lock retention of immutable objects (everything outside {@code
 *     state/}); {@code null} for none; not available with {@code ossCompatible}
 * @param transfer retries and bandwidth; {@code null} for {@link TransferLimits#DEFAULTS}
 */
public record S3TargetSpec(
        URI endpoint,
        String region,
        String bucket,
        String prefix,
        boolean pathStyle,
        boolean ossCompatible,
        String storageClass,
        SecretSource accessKey,
        SecretSource secretKey,
        ObjectLockRetention objectLock,
        TransferLimits transfer)
        implements TargetSpec {

    /** The {@code type} of this kind. */
    public static final String TYPE = "s3";

    /** The signing region when none is given. */
    public static final String DEFAULT_REGION = "us-east-1";

    /** The environment variable holding the secret key of command-line S3 locations. */
    public static final String COMMAND_LINE_SECRET_KEY_ENV = "TIDEMARK_S3_SECRET_KEY";

    /** Checks the settings together, applies the defaults and normalises the prefix. */
    public S3TargetSpec {
        TargetSpecException.Collector problems = new TargetSpecException.Collector();
        if (endpoint != null
                && (endpoint.getHost() == null
                        || !("http".equals(endpoint.getScheme()) || "https".equals(endpoint.getScheme())))) {
            problems.add("endpoint", "endpoint '" + endpoint + "' is not an http(s) URL with a host");
        }
        region = region == null || region.isBlank() ? DEFAULT_REGION : region.strip();
        if (bucket == null || bucket.isBlank()) {
            problems.add(null, "type s3 needs 'bucket'");
        }
        prefix = prefix == null ? "" : prefix;
        if (prefix.startsWith("/")) {
            problems.add("prefix", "key prefix '" + prefix + "' must not start with '/'");
        }
        if (!prefix.isEmpty() && !prefix.endsWith("/")) {
            prefix = prefix + "/";
        }
        if (ossCompatible && pathStyle) {
            problems.add("pathStyle", "Alibaba OSS accepts only virtual-hosted-style requests: turn path style off");
        }
        if (storageClass != null && storageClass.isBlank()) {
            storageClass = null;
        }
        if (objectLock != null && ossCompatible) {
            problems.add(
                    "objectLockMode",
                    "S3 Object Lock is not available through Alibaba OSS's S3 API: remove objectLockMode and"
                            + " use the bucket's OSS retention policy (WORM) instead");
        }
        transfer = transfer == null ? TransferLimits.DEFAULTS : transfer;
        problems.check();
    }

    @Override
    public String type() {
        return TYPE;
    }

    /** {@code s3://bucket/prefix}, the location without endpoint. */
    public String location() {
        return "s3://" + bucket + "/" + prefix;
    }

    /** Reads the key pair and makes the S3 client. */
    @Override
    public ObjectTarget adapter(String name, Origin origin) {
        String accessKeyId = SecretSource.require(accessKey, name, "access key");
        String secret = SecretSource.require(secretKey, name, "secret key");
        return S3ObjectTarget.create(this, new S3Credentials(accessKeyId, secret, secretKeyFrom(name, origin)));
    }

    /**
     * Where the secret key is read from, naming the setting the operator actually used: the config
     * key ({@code secretKeyFile /etc/… of target 'offsite'}) or, for a command-line location, the
     * environment variable ({@code TIDEMARK_S3_SECRET_KEY}, {@code TIDEMARK_S3_SECRET_KEY_FILE}).
     */
    public String secretKeyFrom(String name, Origin origin) {
        if (secretKey == null) {
            return null;
        }
        if (origin == Origin.COMMAND_LINE) {
            return secretKey.env() != null
                    ? "from environment variable " + secretKey.env()
                    : "from the file " + secretKey.file() + " named by " + COMMAND_LINE_SECRET_KEY_ENV + "_FILE";
        }
        return secretKey.describe(name, "secretKey");
    }

    /** A builder with nothing set. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds an {@link S3TargetSpec} setting by setting; the methods are named as the config keys. */
    public static final class Builder extends TargetSpecBuilder<Builder, S3TargetSpec> {
        private URI endpoint;
        private String region;
        private String bucket;
        private String prefix;
        private boolean pathStyle;
        private boolean ossCompatible;
        private String storageClass;
        private String accessKeyEnv;
        private String accessKeyFile;
        private String secretKeyEnv;
        private String secretKeyFile;
        private String objectLockMode;
        private Integer objectLockDays;

        Builder() {}

        public Builder endpoint(URI endpoint) {
            this.endpoint = endpoint;
            return this;
        }

        public Builder region(String region) {
            this.region = region;
            return this;
        }

        public Builder bucket(String bucket) {
            this.bucket = bucket;
            return this;
        }

        public Builder prefix(String prefix) {
            this.prefix = prefix;
            return this;
        }

        public Builder pathStyle(boolean pathStyle) {
            this.pathStyle = pathStyle;
            return this;
        }

        public Builder ossCompatible(boolean ossCompatible) {
            this.ossCompatible = ossCompatible;
            return this;
        }

        public Builder storageClass(String storageClass) {
            this.storageClass = storageClass;
            return this;
        }

        public Builder accessKeyEnv(String accessKeyEnv) {
            this.accessKeyEnv = accessKeyEnv;
            return this;
        }

        public Builder accessKeyFile(String accessKeyFile) {
            this.accessKeyFile = accessKeyFile;
            return this;
        }

        public Builder secretKeyEnv(String secretKeyEnv) {
            this.secretKeyEnv = secretKeyEnv;
            return this;
        }

        public Builder secretKeyFile(String secretKeyFile) {
            this.secretKeyFile = secretKeyFile;
            return this;
        }

        /** {@code GOVERNANCE} or {@code COMPLIANCE}, with {@link #objectLockDays}. */
        public Builder objectLockMode(String objectLockMode) {
            this.objectLockMode = objectLockMode;
            return this;
        }

        /** Whole days each object stays locked, with {@link #objectLockMode}. */
        public Builder objectLockDays(Integer objectLockDays) {
            this.objectLockDays = objectLockDays;
            return this;
        }

        @Override
        public S3TargetSpec build() {
            TargetSpecException.Collector problems = new TargetSpecException.Collector();
            ObjectLockRetention lock = null;
            try {
                lock = ObjectLockRetention.of(objectLockMode, objectLockDays);
            } catch (PermanentException e) {
                boolean modeAtFault = objectLockMode != null && (objectLockDays == null || !isMode(objectLockMode));
                problems.add(modeAtFault ? "objectLockMode" : "objectLockDays", e);
            }
            ObjectLockRetention objectLock = lock;
            S3TargetSpec spec = null;
            try {
                spec = build(transfer -> new S3TargetSpec(
                        endpoint,
                        region,
                        bucket,
                        prefix,
                        pathStyle,
                        ossCompatible,
                        storageClass,
                        SecretSource.of(accessKeyEnv, accessKeyFile),
                        SecretSource.of(secretKeyEnv, secretKeyFile),
                        objectLock,
                        transfer));
            } catch (PermanentException e) {
                problems.add(null, e);
            }
            problems.check();
            return spec;
        }

        private static boolean isMode(String mode) {
            try {
                ObjectLockRetention.mode(mode);
                return true;
            } catch (PermanentException e) {
                return false;
            }
        }
    }
}

package io.tidemark.targets.s3;

import io.tidemark.core.PermanentException;

/**
 * The key pair {@link S3ObjectTarget} signs with, read from a file or the environment by the
 * caller (see {@link io.tidemark.targets.SecretSource}).
 *
 * @param accessKeyId the access key id; may appear in messages
 * @param secretAccessKey the secret key; never logged, never in messages or {@link #toString()}
 * @param from where the pair was read from, in words for error messages (for example {@code from
 *     the file /etc/tidemark/s3.secret, set by secretKeyFile of target 'offsite'}); never the secret
 *     itself; {@code null} when the caller gave the keys directly
 */
public record S3Credentials(String accessKeyId, String secretAccessKey, String from) {

    /** Both keys must be given. */
    public S3Credentials {
        if (accessKeyId == null || accessKeyId.isBlank()) {
            throw new PermanentException("invalid S3 target configuration: access key id is missing");
        }
        if (secretAccessKey == null || secretAccessKey.isEmpty()) {
            throw new PermanentException(
                    "invalid S3 target configuration: secret access key is missing (set TIDEMARK_S3_SECRET_KEY_FILE)");
        }
    }

    /** Keys given directly (tests, benchmarks). */
    public static S3Credentials of(String accessKeyId, String secretAccessKey) {
        return new S3Credentials(accessKeyId, secretAccessKey, null);
    }

    /** The access key id and where the pair came from; the secret is shown as {@code ***}. */
    @Override
    public String toString() {
        return "S3Credentials[accessKeyId=" + accessKeyId + ", secretAccessKey=***, from=" + from + "]";
    }
}

package io.tidemark.targets.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.net.URI;
import org.junit.jupiter.api.Test;

class S3TargetConfigTest {

    private static final URI OSS = URI.create("https://s3.oss-cn-hangzhou.aliyuncs.com");

    @Test
    void toStringHidesTheSecret() {
        S3TargetConfig config =
                new S3TargetConfig(OSS, "oss-cn-hangzhou", "b", "p", false, true, null, "AKID", "s3cr3t-value");

        assertThat(config.toString()).doesNotContain("s3cr3t-value").contains("secretAccessKey=***", "AKID");
    }

    @Test
    void keyPrefixIsNormalisedToEndWithASlash() {
        assertThat(config("backups").keyPrefix()).isEqualTo("backups/");
        assertThat(config("backups/").keyPrefix()).isEqualTo("backups/");
        assertThat(config("").keyPrefix()).isEmpty();
        assertThat(config(null).keyPrefix()).isEmpty();
        assertThat(config("a/b").location()).isEqualTo("s3://bucket/a/b/");
    }

    @Test
    void ossWithPathStyleIsRefused() {
        assertThatThrownBy(() -> new S3TargetConfig(OSS, "r", "b", "", true, true, null, "AKID", "secret"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("virtual-hosted");
    }

    @Test
    void missingSettingsAreNamed() {
        assertThatThrownBy(() -> new S3TargetConfig(null, "r", "b", "", false, false, null, "AKID", ""))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("TIDEMARK_S3_SECRET_KEY_FILE");
        assertThatThrownBy(() -> new S3TargetConfig(null, "r", " ", "", false, false, null, "AKID", "s"))
                .hasMessageContaining("bucket");
        assertThatThrownBy(() -> new S3TargetConfig(null, "r", "b", "/abs", false, false, null, "AKID", "s"))
                .hasMessageContaining("must not start with '/'");
        assertThatThrownBy(() ->
                        new S3TargetConfig(URI.create("ftp://host"), "r", "b", "", false, false, null, "AKID", "s"))
                .hasMessageContaining("http(s)");
    }

    @Test
    void describeNamesLocationAndEndpointButNoCredentials() {
        S3TargetConfig config =
                new S3TargetConfig(OSS, "oss-cn-hangzhou", "b", "p", false, true, null, "AKID", "s3cr3t-value");
        S3TargetConfig aws = new S3TargetConfig(null, "eu-central-1", "b", "", false, false, null, "AKID", "s3cr3t");

        try (S3ObjectTarget oss = S3ObjectTarget.create(config);
                S3ObjectTarget onAws = S3ObjectTarget.create(aws)) {
            assertThat(oss.describe()).isEqualTo("s3://b/p/ (s3.oss-cn-hangzhou.aliyuncs.com, OSS-compatible)");
            assertThat(onAws.describe()).isEqualTo("s3://b/ (AWS eu-central-1)");
        }
    }

    private static S3TargetConfig config(String prefix) {
        return new S3TargetConfig(null, "eu-central-1", "bucket", prefix, false, false, null, "AKID", "secret");
    }
}

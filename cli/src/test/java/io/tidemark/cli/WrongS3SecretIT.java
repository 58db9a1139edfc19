package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A wrong S3 secret against a real endpoint (S3Proxy): the error names the setting that supplied
 * it — the target's {@code secretKeyFile} or {@code secretKeyEnv} in the engine config — and never
 * a setting the operator did not use, nor the secret.
 */
class WrongS3SecretIT {

    private static final String WRONG = "wrong-secret-tidemark-it-5b1e";

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    @Test
    void aWrongSecretFromSecretKeyFileNamesThatSettingOfThatTarget() throws Exception {
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("tidemark-secret");
            Path secret = Files.writeString(dir.resolve("s3.secret"), WRONG);
            Path config = config(s3, "secretKeyFile: " + secret);

            assertThat(Main.execute("verify", "--config", config.toString(), "--target", "offsite"))
                    .isEqualTo(2);
            assertThat(std.err())
                    .contains("HTTP 403")
                    .contains("the file " + secret + ", set by secretKeyFile of target 'offsite'")
                    .doesNotContain("TIDEMARK_S3_SECRET_KEY")
                    .doesNotContain(WRONG)
                    .doesNotContain(s3.secretKey());
        }
    }

    @Test
    void aWrongSecretFromAnEnvironmentVariableNamesThatVariable() throws Exception {
        // the variable is read from the process environment: use one that is set in every test JVM
        // (its value is no S3 secret, so the endpoint refuses it just as a wrong one)
        String variable = System.getenv("PATH") != null ? "PATH" : "HOME";
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("tidemark-secret");
            Path config = config(s3, "secretKeyEnv: " + variable);

            assertThat(Main.execute("gc", "--config", config.toString(), "--target", "offsite"))
                    .isEqualTo(2);
            assertThat(std.err())
                    .contains("HTTP 403")
                    .contains("environment variable " + variable + ", set by secretKeyEnv of target 'offsite'")
                    .doesNotContain("TIDEMARK_S3_SECRET_KEY")
                    .doesNotContain("secretKeyFile");
        }
    }

    private Path config(EmbeddedS3 s3, String secretSetting) throws Exception {
        Path access = Files.writeString(dir.resolve("s3.access"), s3.accessKey());
        return Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                data: %s
                targets:
                  offsite:
                    type: s3
                    endpoint: %s
                    region: us-east-1
                    bucket: tidemark-secret
                    prefix: tm
                    pathStyle: true
                    accessKeyFile: %s
                    %s
                    retryDeadline: 0s
                """
                        .formatted(dir.resolve("data"), s3.endpoint(), access, secretSetting));
    }
}

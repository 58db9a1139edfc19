package io.tidemark.scheduler.hook;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HookSignatureTest {

    static final HookSecret SECRET = HookSecret.of("0123456789abcdef0123456789abcdef\n", "test");
    static final byte[] BODY =
            "{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"pipeline\":\"build-118\",\"wait\":\"committed\",\"timeoutSeconds\":600}"
                    .getBytes(UTF_8);
    /** printf '%s.%s' 1700000000 "$BODY" | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef */
    static final String OPENSSL = "sha256=602e4529ba695614f9fc65b69df590a0c05ab47e3a883a2c3113a1f7cadba054";

    @Test
    void signsLikeOpenssl() {
        assertThat(HookSignature.sign(SECRET, "1700000000", BODY)).isEqualTo(OPENSSL);
        assertThat(HookSignature.verify(SECRET, "1700000000", BODY, OPENSSL)).isTrue();
        assertThat(HookSignature.verify(
                        SECRET, "1700000000", BODY, OPENSSL.toUpperCase().replace("SHA256=", "sha256=")))
                .isTrue();
    }

    @Test
    void refusesAnythingElse() {
        assertThat(HookSignature.verify(SECRET, "1700000001", BODY, OPENSSL)).isFalse();
        assertThat(HookSignature.verify(SECRET, "1700000000", "{}".getBytes(UTF_8), OPENSSL))
                .isFalse();
        assertThat(HookSignature.verify(
                        HookSecret.of("another-secret-of-enough-bytes", "t"), "1700000000", BODY, OPENSSL))
                .isFalse();
        assertThat(HookSignature.verify(SECRET, "1700000000", BODY, OPENSSL.substring("sha256=".length())))
                .isFalse();
        assertThat(HookSignature.verify(SECRET, "1700000000", BODY, "sha256=" + "zz".repeat(32)))
                .isFalse();
        assertThat(HookSignature.verify(SECRET, "1700000000", BODY, OPENSSL + "00"))
                .isFalse();
        assertThat(HookSignature.verify(SECRET, "1700000000", BODY, null)).isFalse();
    }

    @Test
    void secretsComeFromAFileOrTheEnvironmentAndAreNeverShown(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("hook.secret");
        Files.writeString(file, "0123456789abcdef0123456789abcdef\n");
        HookSecret fromFile = HookSecret.load(file, "IGNORED", Map.of());
        HookSecret fromEnv =
                HookSecret.load(null, "TM_SECRET", Map.of("TM_SECRET", "0123456789abcdef0123456789abcdef"));

        assertThat(HookSignature.sign(fromFile, "1700000000", BODY)).isEqualTo(OPENSSL);
        assertThat(HookSignature.sign(fromEnv, "1700000000", BODY)).isEqualTo(OPENSSL);
        assertThat(fromFile.toString()).doesNotContain("0123").isEqualTo("HookSecret[redacted]");
    }

    @Test
    void missingOrWeakSecretsAreRefusedWithWhatToDo(@TempDir Path dir) throws Exception {
        assertThatThrownBy(() -> HookSecret.load(null, null, Map.of()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no pre-deploy hook secret configured")
                .hasMessageContaining("openssl rand -hex 32");
        assertThatThrownBy(() -> HookSecret.load(null, "TM_SECRET", Map.of()))
                .hasMessageContaining("environment variable TM_SECRET holds no pre-deploy hook secret");
        assertThatThrownBy(() -> HookSecret.load(dir.resolve("absent"), null, Map.of()))
                .hasMessageContaining("cannot read the pre-deploy hook secret file");
        Path weak = dir.resolve("weak");
        Files.writeString(weak, "short-secret\n");
        assertThatThrownBy(() -> HookSecret.load(weak, null, Map.of()))
                .hasMessageContaining("shorter than 16 bytes")
                .hasMessageNotContaining("short-secret");
    }
}

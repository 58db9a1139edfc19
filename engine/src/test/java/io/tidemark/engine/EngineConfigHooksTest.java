package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.scheduler.hook.HookSignature;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code hooks:} section of the engine config. */
class EngineConfigHooksTest {

    @TempDir
    Path dir;

    @Test
    void readsTheHooksSection() throws Exception {
        Path secret = Files.writeString(dir.resolve("hook.secret"), "0123456789abcdef0123456789abcdef\n");
        Path file = Files.writeString(
                dir.resolve("engine.yaml"),
                """
                host: hv1
                hooks:
                  address: 127.0.0.1:9470
                  secretFile: %s
                """
                        .formatted(secret));

        EngineConfig.HooksConfig hooks = EngineConfig.load(file).hooks();

        assertThat(hooks.enabled()).isTrue();
        assertThat(hooks.socketAddress()).isEqualTo(new InetSocketAddress("127.0.0.1", 9470));
        assertThat(HookSignature.sign(hooks.secret(Map.of()), "1", "{}".getBytes(StandardCharsets.UTF_8)))
                .startsWith("sha256=");
        assertThat(EngineConfig.load(file).toBuilder().metrics("").build().hooks())
                .isEqualTo(hooks);
    }

    @Test
    void defaultsAndOff() throws Exception {
        EngineConfig.HooksConfig defaults = EngineConfig.HooksConfig.defaults();
        assertThat(defaults.socketAddress()).isEqualTo(new InetSocketAddress("127.0.0.1", 9465));
        assertThat(defaults.secret(Map.of("TIDEMARK_HOOK_SECRET", "0123456789abcdef0123456789abcdef")))
                .isNotNull();
        assertThatThrownBy(() -> defaults.secret(Map.of()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("TIDEMARK_HOOK_SECRET");
        assertThat(new EngineConfig.HooksConfig("", null, null).enabled()).isFalse();
        assertThat(EngineConfig.empty().hooks()).isNull();

        Path file = Files.writeString(dir.resolve("bad.yaml"), "hooks:\n  adress: 127.0.0.1:1\n");
        assertThatThrownBy(() -> EngineConfig.load(file)).hasMessageContaining("adress");
    }
}

package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.workers.CaptureHooks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code statusPage:} section of the engine config, and what a bad one does at start. */
class EngineConfigStatusPageTest {

    @TempDir
    Path dir;

    private Path config(String metrics, Path tokenFile) throws Exception {
        return Files.writeString(
                dir.resolve("engine.yaml"),
                """
                host: hv1
                data: %s
                policies: %s
                qmpDir: %s
                metrics: "%s"
                roles: [replicator]
                statusPage:
                  tokenFile: %s
                """
                        .formatted(
                                dir.resolve("data"),
                                Files.createDirectories(dir.resolve("policies")),
                                Files.createDirectories(dir.resolve("qmp")),
                                metrics,
                                tokenFile));
    }

    @Test
    void readsTheTokenFileSetting() throws Exception {
        Path token = Files.writeString(dir.resolve("status.token"), "0123456789abcdef0123456789abcdef\n");

        EngineConfig.StatusPageConfig page =
                EngineConfig.load(config("127.0.0.1:0", token)).statusPage();

        assertThat(page.enabled()).isTrue();
        assertThat(page.tokenFile()).isEqualTo(token);
        assertThat(page.token().matches("0123456789abcdef0123456789abcdef")).isTrue();
        assertThat(EngineConfig.empty().statusPage()).isNull();
        Path typo = Files.writeString(dir.resolve("typo.yaml"), "statusPage:\n  token: abc\n");
        assertThatThrownBy(() -> EngineConfig.load(typo))
                .hasMessageContaining("token")
                .hasMessageContaining("2:");
    }

    @Test
    void aShortTokenOrNoMetricsListenerStopsTheStartNamingTheSetting() throws Exception {
        Path shortToken = Files.writeString(dir.resolve("short.token"), "tiny-secret\n");
        assertThatThrownBy(() -> Engine.start(
                                EngineConfig.load(config("127.0.0.1:0", shortToken)),
                                CaptureHooks.NONE,
                                Clock.systemUTC())
                        .close())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(shortToken.toString())
                .hasMessageContaining("16 bytes")
                .hasMessageNotContaining("tiny-secret");

        Path missing = dir.resolve("absent.token");
        assertThatThrownBy(() -> Engine.start(
                                EngineConfig.load(config("127.0.0.1:0", missing)), CaptureHooks.NONE, Clock.systemUTC())
                        .close())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(missing.toString())
                .hasMessageContaining("statusPage.tokenFile");

        Path token = Files.writeString(dir.resolve("status.token"), "0123456789abcdef0123456789abcdef\n");
        assertThatThrownBy(
                        () -> Engine.start(EngineConfig.load(config("", token)), CaptureHooks.NONE, Clock.systemUTC())
                                .close())
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("metrics");
    }
}

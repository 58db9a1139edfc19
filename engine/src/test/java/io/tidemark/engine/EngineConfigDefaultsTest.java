package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The defaults of the engine's own settings live in EngineConfig alone; run and the offline commands share them. */
class EngineConfigDefaultsTest {

    @Test
    void everyUnsetSettingGetsItsDefaultAndAGivenOneIsKept() {
        EngineConfig filled = EngineConfig.empty().withDefaults(() -> "hv9");

        assertThat(filled.host()).isEqualTo("hv9");
        assertThat(filled.data()).isEqualTo(Path.of("tidemark-data"));
        assertThat(filled.policies()).isEqualTo(Path.of("policies"));
        assertThat(filled.qmpDir()).isEqualTo(Path.of("/run/tidemark/qmp"));
        assertThat(filled.metrics()).isEqualTo("127.0.0.1:9464");
        assertThat(filled.kafka().isEmbedded()).isTrue();

        EngineConfig given = EngineConfig.builder()
                .host("hv1")
                .data(Path.of("/srv/tm"))
                .metrics("")
                .build()
                .withDefaults(() -> {
                    throw new AssertionError("the host is given: no need to look it up");
                });
        assertThat(given.host()).isEqualTo("hv1");
        assertThat(given.data()).isEqualTo(Path.of("/srv/tm"));
        assertThat(given.metrics())
                .as("an empty address turns metrics off; it is not replaced")
                .isEmpty();
        assertThat(given.dataOrDefault()).isEqualTo(Path.of("/srv/tm"));
        assertThat(EngineConfig.empty().policiesOrDefault()).isEqualTo(EngineConfig.DEFAULT_POLICIES);
    }
}

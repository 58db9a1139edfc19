package io.tidemark.scheduler.hook;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class HookJsonTest {

    private static HookJson.Request parse(String json) {
        return HookJson.parseRequest(json.getBytes(UTF_8));
    }

    private static InvalidHookException refused(String json) {
        return org.junit.jupiter.api.Assertions.assertThrows(InvalidHookException.class, () -> parse(json));
    }

    @Test
    void readsARequestWithDefaults() {
        HookJson.Request r = parse("{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"pipeline\":\"build-118\"}");
        assertThat(r.hook())
                .isEqualTo(new PreDeployHook("shop", "4f2a9c1", "build-118", Optional.of(WaitLevel.CAPTURED)));
        assertThat(r.level()).isEqualTo(WaitLevel.CAPTURED);
        assertThat(r.timeout()).isEqualTo(Duration.ofMinutes(10));

        HookJson.Request full = parse(
                "{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":\"p\",\"wait\":\"replicated\",\"timeoutSeconds\":90}");
        assertThat(full.level()).isEqualTo(WaitLevel.REPLICATED);
        assertThat(full.timeout()).isEqualTo(Duration.ofSeconds(90));
    }

    @Test
    void theClientsBodyReadsBackAsTheSameRequest() {
        PreDeployHook hook = new PreDeployHook("shop", "4f2a9c1", "https://ci/p/7", Optional.of(WaitLevel.COMMITTED));
        HookJson.Request r = HookJson.parseRequest(HookJson.request(hook, WaitLevel.COMMITTED, Duration.ofMinutes(3)));
        assertThat(r.hook()).isEqualTo(hook);
        assertThat(r.timeout()).isEqualTo(Duration.ofMinutes(3));
    }

    @Test
    void problemsNameTheField() {
        assertThat(refused("{\"app\":\"shop\",\"pipeline\":\"p\"}").field()).isEqualTo("commit");
        assertThat(refused("{\"app\":\"shop\",\"pipeline\":\"p\"}")).hasMessage("missing field 'commit'");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":null}"))
                .hasMessage("missing field 'pipeline'");
        assertThat(refused("{\"app\":7,\"commit\":\"c\",\"pipeline\":\"p\"}"))
                .hasMessage("'app' must be a string, got NUMBER");
        assertThat(refused("{\"app\":\" \",\"commit\":\"c\",\"pipeline\":\"p\"}"))
                .hasMessage("'app' is missing or empty");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"" + "c".repeat(257) + "\",\"pipeline\":\"p\"}"))
                .hasMessage("'commit' is longer than 256 characters");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\\n\",\"pipeline\":\"p\"}"))
                .hasMessage("'commit' holds a control character");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":\"p\",\"wait\":\"deployed\"}"))
                .hasMessage("'wait' must be one of captured, committed, replicated, got 'deployed'");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":\"p\",\"timeoutSeconds\":0}")
                        .field())
                .isEqualTo("timeoutSeconds");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":\"p\",\"timeoutSeconds\":1.5}")
                        .field())
                .isEqualTo("timeoutSeconds");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":\"p\",\"timeoutSeconds\":3601}"))
                .hasMessage("'timeoutSeconds' must be a whole number from 1 to 3600, got 3601");
        assertThat(refused("{\"app\":\"shop\",\"commit\":\"c\",\"pipeline\":\"p\",\"timeout\":60}"))
                .hasMessage("unknown field 'timeout'; expected app, commit, pipeline, wait, timeoutSeconds, requestId");
    }

    @Test
    void malformedBodiesAreRefused() {
        assertThat(refused("{\"app\":").getMessage()).startsWith("the body is not valid JSON");
        assertThat(refused("").getMessage()).startsWith("the body must be a JSON object");
        assertThat(refused("[1]").getMessage()).startsWith("the body must be a JSON object");
        assertThat(refused("{\"app\":\"a\",\"app\":\"b\",\"commit\":\"c\",\"pipeline\":\"p\"}")
                        .getMessage())
                .startsWith("the body is not valid JSON")
                .contains("Duplicate field 'app'");
        assertThat(refused("{\"app\":\"a\",\"commit\":\"c\",\"pipeline\":\"p\"} {}")
                        .getMessage())
                .startsWith("the body is not valid JSON");
    }

    @Test
    void waitLevelsHaveWireNames() {
        assertThat(WaitLevel.parse("committed")).contains(WaitLevel.COMMITTED);
        assertThat(WaitLevel.parse("COMMITTED")).isEmpty();
        assertThat(WaitLevel.wireNames()).isEqualTo("captured, committed, replicated");
        assertThatThrownBy(() -> new PreDeployHook(null, "c", "p", Optional.empty()))
                .isInstanceOf(InvalidHookException.class)
                .hasMessage("'app' is missing or empty");
    }
}

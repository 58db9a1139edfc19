package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class VmSelectorTest {
    static final Map<String, String> WEB = Map.of("tier", "web", "env", "prod");

    @Test
    void namesMatchExactly() {
        VmSelector s = VmSelector.ofNames("web-1", "web-2");
        assertThat(s.matches("web-1", Map.of())).isTrue();
        assertThat(s.matches("web-10", Map.of())).isFalse();
        assertThat(s.matches("WEB-1", Map.of())).isFalse();
    }

    @Test
    void globsMatchWholeNames() {
        VmSelector s = new VmSelector(List.of(), List.of("web-*", "db-?"), Map.of());
        assertThat(s.matches("web-", Map.of())).isTrue();
        assertThat(s.matches("web-eu-1", Map.of())).isTrue();
        assertThat(s.matches("db-1", Map.of())).isTrue();
        assertThat(s.matches("db-12", Map.of())).isFalse();
        assertThat(s.matches("xweb-1", Map.of())).isFalse();
    }

    @Test
    void globMetacharactersOtherThanStarAndQuestionMarkAreLiteral() {
        VmSelector s = new VmSelector(List.of(), List.of("a.b[1]+*"), Map.of());
        assertThat(s.matches("a.b[1]+x", Map.of())).isTrue();
        assertThat(s.matches("axb1", Map.of())).isFalse();
    }

    @Test
    void labelsMustAllMatch() {
        VmSelector s = new VmSelector(List.of(), List.of(), Map.of("tier", "web", "env", "prod"));
        assertThat(s.matches("anything", WEB)).isTrue();
        assertThat(s.matches("anything", Map.of("tier", "web"))).isFalse();
        assertThat(s.matches("anything", Map.of("tier", "web", "env", "dev"))).isFalse();
    }

    @Test
    void nameTestAndLabelsAreBothRequired() {
        VmSelector s = new VmSelector(List.of("db-1"), List.of("web-*"), Map.of("tier", "web"));
        assertThat(s.matches("web-1", WEB)).isTrue();
        assertThat(s.matches("web-1", Map.of("tier", "db"))).isFalse();
        assertThat(s.matches("db-1", Map.of("tier", "db"))).isFalse();
        assertThat(s.matches("db-1", Map.of("tier", "web"))).isTrue();
        assertThat(s.matches("cache-1", WEB)).isFalse();
    }

    @Test
    void emptySelectorMatchesNothing() {
        assertThat(new VmSelector(List.of(), List.of(), Map.of()).matches("web-1", WEB))
                .isFalse();
    }
}

package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The policies shipped in {@code policies/examples/} must always load. */
class ExamplePoliciesTest {
    static final Path EXAMPLES = Path.of("examples");

    @Test
    void examplesLoad() {
        PolicySet set = new PolicyParser(PolicyParserTest.CLOCK).loadDirectory(EXAMPLES);
        assertThat(set.names()).containsExactly("build-agents", "databases", "web-tier");

        Policy web = set.find("web-tier").orElseThrow();
        assertThat(web.vms()).isEqualTo(new VmSelector(List.of(), List.of("web-*"), Map.of("tier", "web")));
        assertThat(web.schedule()).isEqualTo(new Schedule.Interval(Duration.ofMinutes(15), Duration.ofSeconds(30)));
        assertThat(web.rpo()).isEqualTo(Duration.ofMinutes(30));
        assertThat(web.targets()).containsExactly("offsite-s3");

        Policy db = set.find("databases").orElseThrow();
        assertThat(db.schedule()).isEqualTo(new Schedule.Cron("0 0 * * * ?", Duration.ofMinutes(5)));
        assertThat(db.consistency()).isEqualTo(ConsistencyPolicy.APPLICATION_REQUIRED);
        assertThat(db.rpo()).isEqualTo(Duration.ofMinutes(90));
        assertThat(db.targets()).containsExactly("offsite-s3", "dr-ceph");
        assertThat(db.qos().readIopsPerSecond()).hasValue(2000);
        assertThat(db.budgetAt("local")).hasValue(500L << 30);

        Policy ci = set.find("build-agents").orElseThrow();
        assertThat(ci.vms().globs()).containsExactly("ci-agent-??", "ci-runner-*");
        assertThat(ci.targets()).isEmpty();
        assertThat(ci.rto()).isEmpty();
    }

    @Test
    void eachExampleParsesOnItsOwn() {
        PolicyParser parser = new PolicyParser(PolicyParserTest.CLOCK);
        for (String file : List.of("web-tier.yaml", "databases.yaml", "build-agents.yaml")) {
            assertThat(parser.parseFile(EXAMPLES.resolve(file)).source()).contains(EXAMPLES.resolve(file));
        }
    }
}

package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PolicyDiffTest {

    private static Policy policy(String name, Duration every, Duration rpo) {
        return Policy.of(name, VmSelector.ofNames(name + "-1"), Schedule.Interval.every(every), rpo, List.of());
    }

    @Test
    void listsAddedRemovedAndChangedKeys() {
        PolicySet main = PolicySet.of(
                policy("db", Duration.ofHours(1), Duration.ofHours(2)),
                policy("old", Duration.ofHours(1), Duration.ofHours(2)),
                policy("web", Duration.ofMinutes(15), Duration.ofMinutes(30)));
        PolicySet pr = PolicySet.of(
                policy("db", Duration.ofHours(1), Duration.ofHours(2)),
                policy("new", Duration.ofHours(1), Duration.ofHours(2)),
                policy("web", Duration.ofMinutes(10), Duration.ofMinutes(20)));
        PolicyDiff diff = PolicyDiff.between(main, pr);
        assertThat(diff.added()).containsExactly("new");
        assertThat(diff.removed()).containsExactly("old");
        assertThat(diff.changed()).isEqualTo(Map.of("web", List.of("schedule", "rpo")));
        assertThat(diff.isEmpty()).isFalse();
    }

    @Test
    void identicalSetsDoNotDiffer() {
        PolicySet set = PolicySet.of(policy("db", Duration.ofHours(1), Duration.ofHours(2)));
        assertThat(PolicyDiff.between(set, set).isEmpty()).isTrue();
    }

    @Test
    void aChangedBudgetIsAChangedKey() {
        Policy db = policy("db", Duration.ofHours(1), Duration.ofHours(2));
        PolicyDiff diff = PolicyDiff.between(
                PolicySet.of(db.withBudgets(Map.of("local", 50L << 30))),
                PolicySet.of(db.withBudgets(Map.of("local", 60L << 30))));
        assertThat(diff.changed()).isEqualTo(Map.of("db", List.of("budget")));
    }

    @Test
    void aChangedTierIsAChangedKey() {
        Policy db = policy("db", Duration.ofHours(1), Duration.ofHours(2));
        Tier warm = new Tier("warm", "offsite", java.util.Optional.empty(), Duration.ofDays(30));
        PolicyDiff diff = PolicyDiff.between(
                PolicySet.of(db.withTiers(new Tiers(List.of(warm)))),
                PolicySet.of(db.withTiers(new Tiers(List.of(
                        warm, new Tier("cold", "offsite", java.util.Optional.of("GLACIER"), Duration.ofDays(365)))))));
        assertThat(diff.changed()).isEqualTo(Map.of("db", List.of("tiers")));
    }
}

package io.tidemark.policies;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The storage tiers of a policy, in file order (see {@link Tier} for how tiers chain per location).
 * {@link #NONE} has no tiers: every location keeps its points in the target's own storage class and
 * {@link Policy#retention()} alone decides how long.
 */
public record Tiers(List<Tier> all) {

    /** No tiers. */
    public static final Tiers NONE = new Tiers(List.of());

    public Tiers {
        all = List.copyOf(all);
    }

    public boolean isEmpty() {
        return all.isEmpty();
    }

    /** The locations that have tiers, in file order. */
    public Set<String> locations() {
        Set<String> out = new LinkedHashSet<>();
        all.forEach(t -> out.add(t.location()));
        return out;
    }

    /** The chain of tiers at {@code location}, in file order; empty when it has none. */
    public List<Tier> at(String location) {
        return all.stream().filter(t -> t.location().equals(location)).toList();
    }

    /** The age at which a point enters {@code tier}: the sum of the keeps of the tiers before it at its location. */
    public Duration entersAt(Tier tier) {
        Duration age = Duration.ZERO;
        for (Tier t : at(tier.location())) {
            if (t.equals(tier)) {
                return age;
            }
            age = age.plus(t.keep());
        }
        throw new IllegalArgumentException("tier " + tier.name() + " is not one of these tiers");
    }

    /** The age after which a point expires at {@code location}: the sum of its tiers' keeps; empty without tiers. */
    public Optional<Duration> expiresAt(String location) {
        List<Tier> chain = at(location);
        return chain.isEmpty()
                ? Optional.empty()
                : Optional.of(chain.stream().map(Tier::keep).reduce(Duration.ZERO, Duration::plus));
    }

    /**
     * The tier a point of {@code age} belongs to at {@code location}; empty when the location has
     * no tiers or the point is older than its last tier (expired).
     */
    public Optional<Tier> tierFor(String location, Duration age) {
        Duration end = Duration.ZERO;
        for (Tier t : at(location)) {
            end = end.plus(t.keep());
            if (age.compareTo(end) < 0) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    /**
     * The tier an object shared by points of {@code ages} at {@code location} may be in: the
     * warmest (earliest in the chain) of their tiers, so an object moves to a colder tier only when
     * every point that needs it allows it. Expired points do not hold an object back. Empty when no
     * point of {@code ages} is in a tier.
     */
    public Optional<Tier> tierForShared(String location, List<Duration> ages) {
        List<Tier> chain = at(location);
        int warmest = Integer.MAX_VALUE;
        for (Duration age : ages) {
            Optional<Tier> t = tierFor(location, age);
            if (t.isPresent()) {
                warmest = Math.min(warmest, chain.indexOf(t.get()));
            }
        }
        return warmest == Integer.MAX_VALUE ? Optional.empty() : Optional.of(chain.get(warmest));
    }

    /** The tiers with a storage class different from the one before them at their location: real moves. */
    public List<Tier> transitions() {
        List<Tier> out = new ArrayList<>();
        for (String location : locations()) {
            List<Tier> chain = at(location);
            for (int i = 1; i < chain.size(); i++) {
                if (!Objects.equals(
                        chain.get(i).storageClass(), chain.get(i - 1).storageClass())) {
                    out.add(chain.get(i));
                }
            }
        }
        return out;
    }
}

package io.tidemark.targets.s3;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.format.ObjectKeys;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ExpirationStatus;
import software.amazon.awssdk.services.s3.model.LifecycleRule;
import software.amazon.awssdk.services.s3.model.LifecycleRuleAndOperator;
import software.amazon.awssdk.services.s3.model.LifecycleRuleFilter;
import software.amazon.awssdk.services.s3.model.Tag;
import software.amazon.awssdk.services.s3.model.Transition;

/**
 * The lifecycle rules Tidemark keeps on an S3 target's bucket so that chunks it tagged for a
 * storage class ({@link ColdStorage#TIER_TAG}) move there (docs/adr/0020-storage-tiers.md).
 *
 * <p>One rule per storage class per target: ID {@code tidemark-tier-<CLASS>:<keyPrefix>}, filter
 * key prefix {@code <keyPrefix>chunks/} and tag {@code tidemark-tier=<CLASS>}, one transition to
 * {@code CLASS} ({@link #transitionDays} after the object was written; the tag, which Tidemark sets
 * only once every restore point that needs the chunk allows the class, is what times the move).
 * No expiration: restore points expire through retention and prune, and their chunks through
 * garbage collection, which knows which points share them; an age-based expiry on shared chunks
 * would delete data newer points still need. Manifests, index pages and roots never match (other
 * prefixes), so {@code list} and {@code show} never need a restore.
 *
 * <p>S3 replaces a bucket's lifecycle configuration as a whole. A rule whose ID does not start
 * with {@link #ID_PREFIX} was not written by Tidemark: {@link #apply} never drops or rewrites one
 * silently. It refuses with a {@link PermanentException} naming the rules, unless the caller asks
 * to carry them over unchanged. Rules of Tidemark's other targets in the bucket (other key
 * prefixes) are carried over as they are.
 */
public final class S3TierRules {

    /** The ID prefix of every lifecycle rule Tidemark writes. */
    public static final String ID_PREFIX = "tidemark-";

    private final S3ObjectTarget target;
    private final S3Client s3;
    private final String bucket;
    private final String prefix;

    public S3TierRules(S3ObjectTarget target) {
        this.target = Objects.requireNonNull(target, "target");
        this.s3 = target.client();
        this.bucket = target.spec().bucket();
        this.prefix = target.spec().prefix();
    }

    /**
     * What differs between the bucket's rules and the ones this target's tiers need.
     *
     * @param missing storage classes that have no rule
     * @param changed IDs of this target's rules whose filter or transition is not what Tidemark wrote
     * @param extra IDs of this target's rules for classes no tier uses any more
     * @param foreign IDs of rules Tidemark did not write (any prefix)
     */
    public record Drift(List<String> missing, List<String> changed, List<String> extra, List<String> foreign) {
        public Drift {
            missing = List.copyOf(missing);
            changed = List.copyOf(changed);
            extra = List.copyOf(extra);
            foreign = List.copyOf(foreign);
        }

        /** True when this target's rules are exactly the needed ones (foreign rules aside). */
        public boolean inSync() {
            return missing.isEmpty() && changed.isEmpty() && extra.isEmpty();
        }
    }

    /** The ID of this target's rule for {@code storageClass}. */
    public String ruleId(String storageClass) {
        return ID_PREFIX + "tier-" + storageClass + ":" + prefix;
    }

    /**
     * Days after an object's creation before its transition may run: 30 for the infrequent-access
     * classes (S3 refuses less), else 0 (the tag alone decides).
     */
    static int transitionDays(String storageClass) {
        return storageClass.endsWith("_IA") ? 30 : 0;
    }

    /** The rule this target needs for {@code storageClass}. */
    public LifecycleRule rule(String storageClass) {
        return LifecycleRule.builder()
                .id(ruleId(storageClass))
                .status(ExpirationStatus.ENABLED)
                .filter(LifecycleRuleFilter.builder()
                        .and(LifecycleRuleAndOperator.builder()
                                .prefix(prefix + ObjectKeys.CHUNKS)
                                .tags(Tag.builder()
                                        .key(ColdStorage.TIER_TAG)
                                        .value(storageClass)
                                        .build())
                                .build())
                        .build())
                .transitions(Transition.builder()
                        .days(transitionDays(storageClass))
                        .storageClass(storageClass)
                        .build())
                .build();
    }

    /** Compares the bucket's rules with the ones {@code storageClasses} need. Changes nothing. */
    public Drift check(Set<String> storageClasses) {
        return drift(current(), storageClasses);
    }

    private Drift drift(List<LifecycleRule> current, Set<String> storageClasses) {
        List<String> missing = new ArrayList<>();
        List<String> changed = new ArrayList<>();
        List<String> extra = new ArrayList<>();
        List<String> foreign = new ArrayList<>();
        Set<String> wanted = new TreeSet<>();
        for (String sc : new TreeSet<>(storageClasses)) {
            wanted.add(ruleId(sc));
            LifecycleRule have = current.stream()
                    .filter(r -> ruleId(sc).equals(r.id()))
                    .findFirst()
                    .orElse(null);
            if (have == null) {
                missing.add(sc);
            } else if (!same(have, rule(sc))) {
                changed.add(have.id());
            }
        }
        for (LifecycleRule r : current) {
            if (r.id() == null || !r.id().startsWith(ID_PREFIX)) {
                foreign.add(r.id() == null ? "(a rule without an ID)" : r.id());
            } else if (ours(r) && !wanted.contains(r.id())) {
                extra.add(r.id());
            }
        }
        return new Drift(missing, changed, extra, foreign);
    }

    /**
     * Puts the rules {@code storageClasses} need, removing this target's rules for other classes.
     * Does nothing when they are in place. Refuses, naming them, when the bucket has rules Tidemark
     * did not write, unless {@code keepForeign}: then they are put back exactly as read.
     *
     * @return the drift found before the change
     * @throws PermanentException when foreign rules are present and {@code keepForeign} is false
     */
    public Drift apply(Set<String> storageClasses, boolean keepForeign) {
        List<LifecycleRule> current = current();
        Drift drift = drift(current, storageClasses);
        if (drift.inSync()) {
            return drift;
        }
        if (!drift.foreign().isEmpty() && !keepForeign) {
            throw new PermanentException("bucket '" + bucket + "' has lifecycle rule(s) " + quoted(drift.foreign())
                    + " that Tidemark did not write; S3 replaces a bucket's lifecycle configuration as a whole, so"
                    + " Tidemark will not put its tier rules ("
                    + quoted(drift.missing().stream().map(this::ruleId).toList())
                    + ") over them. Either remove or rename them (IDs starting with '"
                    + ID_PREFIX
                    + "' are Tidemark's), or apply again keeping foreign rules (`tidemark tier apply --keep-foreign`),"
                    + " which puts them back unchanged next to Tidemark's");
        }
        List<LifecycleRule> next = new ArrayList<>();
        for (LifecycleRule r : current) {
            if (!ours(r)) {
                next.add(r); // foreign (keepForeign) or another target's Tidemark rule
            }
        }
        new TreeSet<>(storageClasses).forEach(sc -> next.add(rule(sc)));
        try {
            if (next.isEmpty()) {
                s3.deleteBucketLifecycle(r -> r.bucket(bucket));
            } else {
                s3.putBucketLifecycleConfiguration(r -> r.bucket(bucket).lifecycleConfiguration(c -> c.rules(next)));
            }
        } catch (SdkException e) {
            throw new PermanentException(
                    "cannot put the lifecycle rules of bucket '" + bucket + "' (" + target.describe() + "): "
                            + e.getMessage() + ". Check that the key may PutLifecycleConfiguration on the bucket"
                            + " and that the server supports lifecycle rules with tag filters",
                    e);
        }
        return drift;
    }

    private boolean ours(LifecycleRule r) {
        return r.id() != null && r.id().startsWith(ID_PREFIX + "tier-") && r.id().endsWith(":" + prefix);
    }

    private List<LifecycleRule> current() {
        try {
            return s3.getBucketLifecycleConfiguration(r -> r.bucket(bucket)).rules();
        } catch (AwsServiceException e) {
            if (e.statusCode() == 404
                    && e.awsErrorDetails() != null
                    && "NoSuchLifecycleConfiguration".equals(e.awsErrorDetails().errorCode())) {
                return List.of();
            }
            throw new PermanentException(
                    "cannot read the lifecycle rules of bucket '" + bucket + "' (" + target.describe() + "): HTTP "
                            + e.statusCode() + ". Check that the key may GetLifecycleConfiguration on the bucket",
                    e);
        } catch (SdkException e) {
            throw new PermanentException(
                    "cannot read the lifecycle rules of bucket '" + bucket + "' (" + target.describe() + "): "
                            + e.getMessage(),
                    e);
        }
    }

    /**
     * The same filter, status and transitions, compared by meaning: RGW 16 answers an {@code And}
     * filter of one prefix and one tag as a bare {@code Prefix} and {@code Tag}.
     */
    private static boolean same(LifecycleRule have, LifecycleRule want) {
        return have.filter() != null
                && Objects.equals(filterOf(have.filter()), filterOf(want.filter()))
                && have.status() == want.status()
                && have.transitions().size() == 1
                && Objects.equals(
                        have.transitions().get(0).days(),
                        want.transitions().get(0).days())
                && Objects.equals(
                        have.transitions().get(0).storageClassAsString(),
                        want.transitions().get(0).storageClassAsString())
                && have.expiration() == null;
    }

    /** A filter as its key prefix and its set of tags. */
    private static List<Object> filterOf(LifecycleRuleFilter f) {
        if (f.and() != null) {
            return List.of(String.valueOf(f.and().prefix()), Set.copyOf(f.and().tags()));
        }
        return List.of(String.valueOf(f.prefix()), f.tag() == null ? Set.of() : Set.of(f.tag()));
    }

    private static String quoted(List<String> ids) {
        return String.join(", ", ids.stream().map(id -> "'" + id + "'").toList());
    }
}

package io.tidemark.repository;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Picks one restore point of a VM: by id, as of a time, by a pre-deploy tag, or the newest. Used by
 * every command that starts from a restore point (restore, and the DR commands built on it).
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>{@link #parse} turns the command-line forms into a {@link Criterion}; a malformed time or tag,
 *       or more than one criterion, is an {@link IllegalArgumentException} (bad input) whose message
 *       shows the accepted forms.
 *   <li>{@link #select} returns exactly one point or throws a {@link NoRestorePointException} (a
 *       {@link PermanentException}) naming the VM, the location and the nearest candidates, so the
 *       operator can pick one without another listing.
 *   <li>Times are compared with {@link Manifest#capturedAt()} (the snapshot moment): {@code --at T}
 *       is the newest point captured at or before T.
 *   <li>A tag {@code pre-deploy:SHA} matches points taken by a pre-deploy hook whose commit equals SHA
 *       or starts with it (an abbreviated SHA of at least 4 characters); {@code pre-deploy:APP@SHA}
 *       also requires the app. Several matching points of one commit: the newest. Abbreviations
 *       matching different commits are ambiguous and refused.
 * </ul>
 */
public final class RestorePointSelector {

    /** The prefix of a pre-deploy tag. */
    public static final String PRE_DEPLOY_TAG = "pre-deploy:";

    /** How many nearby points an error lists. */
    static final int CANDIDATES = 5;

    private static final Pattern RELATIVE = Pattern.compile(
            "(?:(\\d+)\\s*(?:w|weeks?))?\\s*(?:(\\d+)\\s*(?:d|days?))?\\s*(?:(\\d+)\\s*(?:h|hours?))?\\s*"
                    + "(?:(\\d+)\\s*(?:m|mins?|minutes?))?\\s*(?:(\\d+)\\s*(?:s|secs?|seconds?))?\\s+ago");

    /** What to select. */
    public sealed interface Criterion permits Newest, ById, AtOrBefore, PreDeploy {
        /** How the criterion reads in messages. */
        String describe();
    }

    /** The newest restore point. */
    public record Newest() implements Criterion {
        @Override
        public String describe() {
            return "the newest restore point";
        }
    }

    /** The restore point with this id. */
    public record ById(String id) implements Criterion {
        public ById {
            Objects.requireNonNull(id, "id");
        }

        @Override
        public String describe() {
            return "restore point '" + id + "'";
        }
    }

    /** The newest restore point captured at or before {@code time}. */
    public record AtOrBefore(Instant time) implements Criterion {
        public AtOrBefore {
            Objects.requireNonNull(time, "time");
        }

        @Override
        public String describe() {
            return "a restore point captured at or before " + time;
        }
    }

    /**
     * The newest restore point a pre-deploy hook took for {@code commit} (or a commit it
     * abbreviates), of {@code app} when present.
     */
    public record PreDeploy(Optional<String> app, String commit) implements Criterion {
        public PreDeploy {
            Objects.requireNonNull(app, "app");
            Objects.requireNonNull(commit, "commit");
        }

        @Override
        public String describe() {
            return "a restore point tagged " + PRE_DEPLOY_TAG
                    + app.map(a -> a + "@").orElse("") + commit;
        }
    }

    /** No restore point matches; the message names the nearest candidates. */
    public static final class NoRestorePointException extends PermanentException {
        private static final long serialVersionUID = 1L;

        public NoRestorePointException(String message) {
            super(message);
        }
    }

    private final Clock clock;
    /** How far past "now" an {@code --at} time may be (clocks of two machines differ a little). */
    private static final Duration FUTURE_TOLERANCE = Duration.ofMinutes(1);

    /** @param clock the "now" of relative times such as {@code 2h ago} */
    public RestorePointSelector(Clock clock) {
        this.clock = clock;
    }

    /**
     * The criterion of the command-line options; at most one may be given (all null: the newest).
     *
     * @param point a restore point id, or {@code latest}
     * @param at an ISO-8601 time ({@code 2026-11-24T03:00:00Z}, {@code 2026-11-24T05:00+02:00}, {@code
     *     2026-11-24T03:00} in UTC, {@code 2026-11-24} = its midnight UTC) or a relative one ({@code
     *     2h ago}, {@code 1d12h ago}, {@code 90m ago}, {@code now})
     * @param tag {@code pre-deploy:SHA} or {@code pre-deploy:APP@SHA}
     * @throws IllegalArgumentException for malformed or conflicting options
     */
    public Criterion parse(String point, String at, String tag) {
        int given = (point != null ? 1 : 0) + (at != null ? 1 : 0) + (tag != null ? 1 : 0);
        if (given > 1) {
            throw new IllegalArgumentException("give only one of --point, --at and --tag");
        }
        if (at != null) {
            Instant time = parseTime(at);
            Instant now = clock.instant();
            if (time.isAfter(now.plus(FUTURE_TOLERANCE))) {
                throw new IllegalArgumentException(
                        "--at '" + at + "' is " + time + ", in the future (now is "
                                + now.truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
                                + "): no restore point is newer than now; for the newest leave --at out or give --point latest");
            }
            return new AtOrBefore(time);
        }
        if (tag != null) {
            return parseTag(tag);
        }
        if (point == null || point.isBlank() || point.equals("latest")) {
            return new Newest();
        }
        return new ById(point.strip());
    }

    /** A time as {@link #parse} accepts it for {@code at}. */
    public Instant parseTime(String text) {
        String t = text.strip();
        String lower = t.toLowerCase(Locale.ROOT);
        if (lower.equals("now")) {
            return clock.instant();
        }
        Matcher m = RELATIVE.matcher(lower);
        if (m.matches() && m.end(0) > 0 && anyGroup(m)) {
            long[] seconds = {7 * 86_400L, 86_400L, 3_600L, 60L, 1L};
            Duration ago = Duration.ZERO;
            try {
                for (int i = 0; i < seconds.length; i++) {
                    if (m.group(i + 1) != null) {
                        ago = ago.plusSeconds(Math.multiplyExact(Long.parseLong(m.group(i + 1)), seconds[i]));
                    }
                }
                return clock.instant().minus(ago);
            } catch (ArithmeticException | NumberFormatException | java.time.DateTimeException e) {
                throw new IllegalArgumentException("'" + text + "' is too far in the past", e);
            }
        }
        try {
            return Instant.parse(t);
        } catch (DateTimeParseException e) {
            // next form
        }
        try {
            return OffsetDateTime.parse(t).toInstant();
        } catch (DateTimeParseException e) {
            // next form
        }
        try {
            return LocalDateTime.parse(t).toInstant(ZoneOffset.UTC);
        } catch (DateTimeParseException e) {
            // next form
        }
        try {
            return LocalDate.parse(t).atStartOfDay().toInstant(ZoneOffset.UTC);
        } catch (DateTimeParseException e) {
            throw new IllegalArgumentException("'" + text + "' is not a time: write an ISO-8601 time such as"
                    + " 2026-11-24T03:00:00Z, 2026-11-24T05:00+02:00 or 2026-11-24T03:00 (UTC), or a relative one"
                    + " such as '2h ago', '1d12h ago', '90m ago'");
        }
    }

    private static boolean anyGroup(Matcher m) {
        for (int i = 1; i <= m.groupCount(); i++) {
            if (m.group(i) != null) {
                return true;
            }
        }
        return false;
    }

    /** {@code pre-deploy:SHA} or {@code pre-deploy:APP@SHA}. */
    public static PreDeploy parseTag(String tag) {
        String t = tag.strip();
        if (!t.startsWith(PRE_DEPLOY_TAG) || t.length() == PRE_DEPLOY_TAG.length()) {
            throw new IllegalArgumentException("tag '" + tag + "' is not of the form pre-deploy:SHA or"
                    + " pre-deploy:APP@SHA (the commit a pre-deploy hook snapshotted before)");
        }
        String rest = t.substring(PRE_DEPLOY_TAG.length());
        int at = rest.lastIndexOf('@');
        Optional<String> app = at > 0 ? Optional.of(rest.substring(0, at)) : Optional.empty();
        String commit = at >= 0 ? rest.substring(at + 1) : rest;
        if (commit.length() < 4) {
            throw new IllegalArgumentException("tag '" + tag + "': the commit '" + commit
                    + "' is too short; give at least 4 characters of the SHA");
        }
        return new PreDeploy(app, commit);
    }

    /**
     * The restore point of {@code vm} in {@code repository} that {@code c} selects.
     *
     * @throws NoRestorePointException when none matches
     */
    public Manifest select(Repository repository, String vm, Criterion c) {
        if (c instanceof ById id) {
            // a direct read, without listing every manifest
            Optional<Manifest> m;
            try {
                m = repository.manifest(vm, id.id());
            } catch (CorruptObjectException e) {
                throw new PermanentException(
                        "restore point '" + id.id() + "' of VM '" + vm + "' in " + repository.describe()
                                + " cannot be read: " + e.getMessage()
                                + ". Restore it from another target that holds it (--from), or pick another point"
                                + " (`tidemark list`)",
                        e);
            }
            if (m.isPresent()) {
                return m.get();
            }
        }
        Repository.Listing listing = repository.listing(vm);
        List<Manifest> points = listing.points();
        if (points.isEmpty() && !listing.unreadable().isEmpty()) {
            throw new NoRestorePointException("VM '" + vm + "' has no readable restore point in "
                    + repository.describe() + ": " + listing.unreadable().size() + " manifests cannot be read ("
                    + listing.unreadable().stream()
                            .map(Repository.UnreadableManifest::key)
                            .collect(Collectors.joining(", "))
                    + "). Run `tidemark verify --target … --repair-from OTHER`, or restore from another target");
        }
        if (points.isEmpty()) {
            List<String> vms = repository.vms();
            throw new NoRestorePointException("VM '" + vm + "' has no restore points in " + repository.describe()
                    + (vms.isEmpty() ? "; the repository holds none at all" : "; VMs with restore points there: " + vms)
                    + ". Check --vm and --from");
        }
        return select(points, vm, repository.describe(), c);
    }

    /**
     * The point of {@code points} (restore points of {@code vm} at {@code location}, any order) that
     * {@code c} selects.
     *
     * @throws NoRestorePointException when none matches
     */
    public Manifest select(List<Manifest> points, String vm, String location, Criterion c) {
        List<Manifest> sorted = new ArrayList<>(points);
        sorted.sort(Comparator.comparing(Manifest::capturedAt).thenComparing(Manifest::id));
        if (sorted.isEmpty()) {
            throw new NoRestorePointException(
                    "VM '" + vm + "' has no restore points in " + location + ". Check --vm and --from");
        }
        String where = " of VM '" + vm + "' in " + location;
        if (c instanceof ById id) {
            return byId(sorted, id, where);
        }
        if (c instanceof AtOrBefore a) {
            return atOrBefore(sorted, a, where);
        }
        if (c instanceof PreDeploy p) {
            return preDeploy(sorted, p, where);
        }
        return sorted.get(sorted.size() - 1);
    }

    private static Manifest byId(List<Manifest> sorted, ById c, String where) {
        for (Manifest m : sorted) {
            if (m.id().equals(c.id())) {
                return m;
            }
        }
        // ids sort by capture time: the nearest are those around where this id would sort
        List<Manifest> byId = new ArrayList<>(sorted);
        byId.sort(Comparator.comparing(Manifest::id));
        int pos = 0;
        while (pos < byId.size() && byId.get(pos).id().compareTo(c.id()) < 0) {
            pos++;
        }
        throw new NoRestorePointException("no restore point '" + c.id() + "'" + where + "; the nearest ids: "
                + describe(around(byId, pos)) + ". `tidemark list --vm …` shows all " + sorted.size());
    }

    private static Manifest atOrBefore(List<Manifest> sorted, AtOrBefore c, String where) {
        Manifest best = null;
        for (Manifest m : sorted) {
            if (!m.capturedAt().isAfter(c.time())) {
                best = m;
            }
        }
        if (best != null) {
            return best;
        }
        throw new NoRestorePointException("no restore point" + where + " was captured at or before " + c.time()
                + "; the oldest ones: " + describe(sorted.subList(0, Math.min(CANDIDATES, sorted.size())))
                + ". Pick a later time, or restore one of these with --point");
    }

    private static Manifest preDeploy(List<Manifest> sorted, PreDeploy c, String where) {
        List<Manifest> hooks =
                sorted.stream().filter(m -> m.trigger().is(TriggerKind.HOOK)).toList();
        List<Manifest> matches = hooks.stream()
                .filter(m -> c.app().isEmpty()
                        || c.app().get().equals(m.trigger().attributes().get("app")))
                .filter(m -> commitMatches(m.trigger().attributes().get("commit"), c.commit()))
                .toList();
        Set<String> commits = matches.stream()
                .map(m -> m.trigger().attributes().get("commit"))
                .collect(Collectors.toCollection(LinkedHashSet::new));
        if (commits.size() > 1) {
            throw new NoRestorePointException("tag " + PRE_DEPLOY_TAG + c.commit() + " is ambiguous" + where
                    + ": it abbreviates the commits " + commits + "; give more of the SHA");
        }
        if (!matches.isEmpty()) {
            return matches.get(matches.size() - 1);
        }
        List<Manifest> recent = hooks.subList(Math.max(0, hooks.size() - CANDIDATES), hooks.size());
        throw new NoRestorePointException("no restore point" + where + " is tagged " + PRE_DEPLOY_TAG
                + c.app().map(a -> a + "@").orElse("") + c.commit()
                + (recent.isEmpty()
                        ? "; none of its " + sorted.size() + " points was taken by a pre-deploy hook"
                        : "; the newest pre-deploy points: " + describe(recent))
                + ". Pick one with --tag or --point");
    }

    private static boolean commitMatches(String commit, String wanted) {
        return commit != null && commit.toLowerCase(Locale.ROOT).startsWith(wanted.toLowerCase(Locale.ROOT));
    }

    private static List<Manifest> around(List<Manifest> byId, int pos) {
        int from = Math.max(0, Math.min(pos - CANDIDATES / 2, byId.size() - CANDIDATES));
        return byId.subList(from, Math.min(byId.size(), from + CANDIDATES));
    }

    /** {@code id (captured T, pre-deploy:APP@SHA)} per point, for messages. */
    static String describe(List<Manifest> points) {
        return points.stream().map(RestorePointSelector::describe).collect(Collectors.joining(", "));
    }

    /** One point as messages show it. */
    public static String describe(Manifest m) {
        return m.id() + " (captured " + m.capturedAt()
                + tag(m).map(t -> ", " + t).orElse("") + ")";
    }

    /** The pre-deploy tag of a point taken by a hook: {@code pre-deploy:APP@SHA}. */
    public static Optional<String> tag(Manifest m) {
        if (!m.trigger().is(TriggerKind.HOOK)) {
            return Optional.empty();
        }
        Map<String, String> a = m.trigger().attributes();
        String commit = a.get("commit");
        if (commit == null) {
            return Optional.empty();
        }
        return Optional.of(PRE_DEPLOY_TAG + (a.containsKey("app") ? a.get("app") + "@" : "") + commit);
    }
}

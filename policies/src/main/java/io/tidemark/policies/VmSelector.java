package io.tidemark.policies;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Which VMs a policy covers.
 *
 * <p>A VM matches when its name passes the name test <em>and</em> it carries every label in {@code
 * labels}. The name test passes when the name is listed in {@code names} or matches one of {@code
 * globs} ({@code *} any run of characters, {@code ?} one character); when both lists are empty,
 * every name passes. A selector with no names, no globs and no labels matches nothing.
 *
 * @param names exact VM names
 * @param globs VM name patterns
 * @param labels labels a VM must carry, all of them, with these values
 */
public record VmSelector(List<String> names, List<String> globs, Map<String, String> labels) {

    public VmSelector {
        names = List.copyOf(names);
        globs = List.copyOf(globs);
        labels = Map.copyOf(labels);
    }

    /** A selector of exactly these VM names. */
    public static VmSelector ofNames(String... names) {
        return new VmSelector(List.of(names), List.of(), Map.of());
    }

    /** True when the selector names no VM at all: no names, no globs, no labels. */
    public boolean isEmpty() {
        return names.isEmpty() && globs.isEmpty() && labels.isEmpty();
    }

    /** True when the VM called {@code vmName}, carrying {@code vmLabels}, is covered by this selector. */
    public boolean matches(String vmName, Map<String, String> vmLabels) {
        Objects.requireNonNull(vmName, "vmName");
        Objects.requireNonNull(vmLabels, "vmLabels");
        if (isEmpty()) {
            return false;
        }
        return matchesName(vmName) && matchesLabels(vmLabels);
    }

    /**
     * A VM that both this selector and {@code other} would select, if one is evident: a name either
     * lists, or a glob of either spelled out ({@code *} as nothing, {@code ?} as {@code a}), that both
     * match, carrying the labels of both. Empty when none is evident (labels that contradict, names
     * that differ); globs overlapping only in ways not spelled out are not found.
     */
    public Optional<String> overlapWitness(VmSelector other) {
        if (isEmpty() || other.isEmpty()) {
            return Optional.empty();
        }
        for (Map.Entry<String, String> e : labels.entrySet()) {
            String theirs = other.labels.get(e.getKey());
            if (theirs != null && !theirs.equals(e.getValue())) {
                return Optional.empty();
            }
        }
        Map<String, String> union = new java.util.HashMap<>(labels);
        union.putAll(other.labels);
        List<String> candidates = new java.util.ArrayList<>();
        for (VmSelector s : List.of(this, other)) {
            candidates.addAll(s.names);
            s.globs.forEach(g -> {
                candidates.add(g.replace("*", "a").replace("?", "a"));
                candidates.add(g.replace("*", "").replace("?", "a"));
            });
        }
        if (candidates.isEmpty()) { // both select by labels only
            candidates.add("any VM with labels " + new java.util.TreeMap<>(union));
            return Optional.of(candidates.get(0));
        }
        return candidates.stream()
                .filter(n -> !n.isEmpty() && matches(n, union) && other.matches(n, union))
                .findFirst();
    }

    private boolean matchesName(String vmName) {
        if (names.isEmpty() && globs.isEmpty()) {
            return true;
        }
        return names.contains(vmName) || globs.stream().anyMatch(g -> globMatches(g, vmName));
    }

    private boolean matchesLabels(Map<String, String> vmLabels) {
        return labels.entrySet().stream().allMatch(e -> e.getValue().equals(vmLabels.get(e.getKey())));
    }

    /** Matches {@code name} against {@code glob}, where {@code *} is any run and {@code ?} one character. */
    static boolean globMatches(String glob, String name) {
        return toPattern(glob).matcher(name).matches();
    }

    private static Pattern toPattern(String glob) {
        StringBuilder regex = new StringBuilder();
        StringBuilder literal = new StringBuilder();
        for (int i = 0; i < glob.length(); i++) {
            char c = glob.charAt(i);
            if (c == '*' || c == '?') {
                if (literal.length() > 0) {
                    regex.append(Pattern.quote(literal.toString()));
                    literal.setLength(0);
                }
                regex.append(c == '*' ? ".*" : ".");
            } else {
                literal.append(c);
            }
        }
        if (literal.length() > 0) {
            regex.append(Pattern.quote(literal.toString()));
        }
        return Pattern.compile(regex.toString(), Pattern.DOTALL);
    }
}

package io.tidemark.policies;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * Reads the keys of one YAML mapping with their positions, reporting wrong shapes to {@link
 * Problems} instead of throwing. Every typed getter returns empty when the key is absent, null, or
 * wrong (the problem is then already reported), so a reader can go on and find the next problem.
 */
final class MappingReader {
    private static final int MAX_QUOTED = 60;

    private final MappingNode node;
    private final String path;
    private final Problems problems;
    private final Map<String, NodeTuple> entries = new LinkedHashMap<>();

    MappingReader(MappingNode node, String path, Problems problems) {
        this.node = node;
        this.path = path;
        this.problems = problems;
        for (NodeTuple tuple : node.getValue()) {
            Node keyNode = tuple.getKeyNode();
            if (!(keyNode instanceof ScalarNode scalar) || isNull(keyNode)) {
                problems.at(keyNode, path, "expected a key name, got " + describe(keyNode));
                continue;
            }
            String key = scalar.getValue();
            NodeTuple first = entries.putIfAbsent(key, tuple);
            if (first != null) {
                problems.at(
                        keyNode,
                        child(key),
                        "duplicate key '" + key + "'; first given at line "
                                + (first.getKeyNode().getStartMark().getLine() + 1));
            }
        }
    }

    MappingNode node() {
        return node;
    }

    String path() {
        return path;
    }

    String child(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** Reports every key not in {@code known}, suggesting the closest known one. */
    void allowOnly(List<String> known) {
        for (Map.Entry<String, NodeTuple> e : entries.entrySet()) {
            if (!known.contains(e.getKey())) {
                problems.at(e.getValue().getKeyNode(), child(e.getKey()), unknownKey(e.getKey(), known));
            }
        }
    }

    private static String unknownKey(String key, List<String> known) {
        String message = "unknown key '" + quoteInner(key) + "'";
        Optional<String> closest = Suggestions.closest(key, known);
        if (closest.isPresent()) {
            return message + "; did you mean '" + closest.get() + "'?";
        }
        return message + "; expected one of: " + String.join(", ", known);
    }

    /** Reports each of {@code keys} that is missing, at this mapping's position. */
    void require(String... keys) {
        for (String key : keys) {
            NodeTuple tuple = entries.get(key);
            if (tuple == null) {
                problems.at(node, child(key), "missing required key '" + key + "'");
            } else if (isNull(tuple.getValueNode())) {
                problems.at(tuple.getValueNode(), child(key), "'" + key + "' needs a value");
            }
        }
    }

    /** True when {@code key} is given with a non-null value. */
    boolean has(String key) {
        return value(key).isPresent();
    }

    /** The value of {@code key}, empty when absent or null ({@code key:}, {@code ~}). */
    Optional<Node> value(String key) {
        NodeTuple tuple = entries.get(key);
        if (tuple == null || isNull(tuple.getValueNode())) {
            return Optional.empty();
        }
        return Optional.of(tuple.getValueNode());
    }

    /** The key node of {@code key}, if given. */
    Optional<Node> keyNode(String key) {
        return Optional.ofNullable(entries.get(key)).map(NodeTuple::getKeyNode);
    }

    Optional<String> string(String key, String expected) {
        return value(key).flatMap(v -> scalar(v, child(key), expected));
    }

    /** A whole number from 0 to 100000. */
    Optional<Integer> count(String key) {
        Optional<String> text = string(key, "a whole number such as 7");
        if (text.isEmpty()) {
            return Optional.empty();
        }
        String t = text.get().trim();
        if (t.matches("\\d{1,6}") && Integer.parseInt(t) <= 100_000) {
            return Optional.of(Integer.parseInt(t));
        }
        problems.at(value(key).orElseThrow(), child(key), "expected a whole number from 0 to 100000, got " + quote(t));
        return Optional.empty();
    }

    /** The keys given in this mapping, in order. */
    List<String> keys() {
        return List.copyOf(entries.keySet());
    }

    Optional<Duration> duration(String key) {
        return value(key).flatMap(v -> duration(v, child(key)));
    }

    /** A positive duration. */
    Optional<Duration> positiveDuration(String key) {
        Optional<Duration> d = duration(key);
        if (d.isPresent() && d.get().isZero()) {
            problems.at(value(key).orElseThrow(), child(key), "must be greater than zero");
            return Optional.empty();
        }
        return d;
    }

    <T> Optional<T> oneOf(String key, Map<String, T> allowed) {
        Optional<String> text = string(key, "one of " + String.join(", ", allowed.keySet()));
        if (text.isEmpty()) {
            return Optional.empty();
        }
        T value = allowed.get(text.get());
        if (value == null) {
            problems.at(
                    value(key).orElseThrow(),
                    child(key),
                    "expected one of " + String.join(", ", allowed.keySet()) + ", got " + quote(text.get()));
        }
        return Optional.ofNullable(value);
    }

    Optional<MappingReader> mapping(String key, String expected) {
        Optional<Node> v = value(key);
        if (v.isEmpty()) {
            return Optional.empty();
        }
        if (v.get() instanceof MappingNode m) {
            return Optional.of(new MappingReader(m, child(key), problems));
        }
        problems.at(v.get(), child(key), "expected " + expected + ", got " + describe(v.get()));
        return Optional.empty();
    }

    /** A list of non-empty strings; a single string is not accepted as a list. */
    Optional<List<String>> strings(String key, String expectedItem) {
        Optional<Node> v = value(key);
        if (v.isEmpty()) {
            return Optional.empty();
        }
        if (!(v.get() instanceof SequenceNode seq)) {
            problems.at(v.get(), child(key), "expected a list of " + expectedItem + "s, got " + describe(v.get()));
            return Optional.empty();
        }
        List<String> items = new ArrayList<>();
        boolean ok = true;
        List<Node> nodes = seq.getValue();
        for (int i = 0; i < nodes.size(); i++) {
            String itemPath = child(key) + "[" + i + "]";
            Optional<String> item = nonEmpty(nodes.get(i), itemPath, expectedItem);
            if (item.isEmpty()) {
                ok = false;
            } else if (items.contains(item.get())) {
                problems.at(nodes.get(i), itemPath, quote(item.get()) + " is listed twice");
                ok = false;
            } else {
                items.add(item.get());
            }
        }
        return ok ? Optional.of(List.copyOf(items)) : Optional.empty();
    }

    /** A mapping of non-empty string keys to string values. */
    Optional<Map<String, String>> stringMap(String key, String expected) {
        Optional<MappingReader> m = mapping(key, expected);
        if (m.isEmpty()) {
            return Optional.empty();
        }
        MappingReader map = m.get();
        boolean ok = map.entries.size() == map.node.getValue().size(); // no bad or duplicate keys
        Map<String, String> result = new LinkedHashMap<>();
        for (Map.Entry<String, NodeTuple> e : map.entries.entrySet()) {
            if (e.getKey().isBlank()) {
                problems.at(e.getValue().getKeyNode(), child(key), "expected a label name, got an empty string");
                ok = false;
                continue;
            }
            String labelPath = child(key) + "." + e.getKey();
            Optional<String> value = scalar(e.getValue().getValueNode(), labelPath, "a label value");
            if (value.isEmpty()) {
                ok = false;
            } else {
                result.put(e.getKey(), value.get());
            }
        }
        return ok ? Optional.of(Map.copyOf(result)) : Optional.empty();
    }

    private Optional<String> nonEmpty(Node n, String keyPath, String expected) {
        Optional<String> s = scalar(n, keyPath, expected);
        if (s.isPresent() && s.get().isBlank()) {
            problems.at(n, keyPath, "expected " + expected + ", got an empty string");
            return Optional.empty();
        }
        return s;
    }

    Optional<String> scalar(Node n, String keyPath, String expected) {
        if (n instanceof ScalarNode s && !isNull(n)) {
            return Optional.of(s.getValue());
        }
        problems.at(n, keyPath, "expected " + expected + ", got " + describe(n));
        return Optional.empty();
    }

    private Optional<Duration> duration(Node n, String keyPath) {
        Optional<String> text = scalar(n, keyPath, DurationSyntax.EXAMPLE);
        if (text.isEmpty()) {
            return Optional.empty();
        }
        Optional<Duration> d = DurationSyntax.parse(text.get().trim());
        if (d.isEmpty()) {
            String hint = text.get().trim().matches("\\d+") ? " (a unit is required: s, m, h or d)" : "";
            problems.at(n, keyPath, "expected " + DurationSyntax.EXAMPLE + ", got " + quote(text.get()) + hint);
        }
        return d;
    }

    static boolean isNull(Node n) {
        return n instanceof ScalarNode && Tag.NULL.equals(n.getTag());
    }

    /** How a node looks to a user: {@code "15 minutes"}, a list, a mapping, nothing. */
    static String describe(Node n) {
        if (isNull(n)) {
            return "nothing";
        }
        if (n instanceof ScalarNode s) {
            return quote(s.getValue());
        }
        if (n instanceof SequenceNode) {
            return "a list";
        }
        return "a mapping";
    }

    /** {@code text} in double quotes, control characters escaped, shortened if long. */
    static String quote(String text) {
        return "\"" + quoteInner(text) + "\"";
    }

    private static String quoteInner(String text) {
        String shown = text.length() > MAX_QUOTED ? text.substring(0, MAX_QUOTED) + "..." : text;
        StringBuilder s = new StringBuilder();
        shown.codePoints().forEach(c -> {
            if (c == '"' || c == '\\') {
                s.append('\\').appendCodePoint(c);
            } else if (c < 0x20 || c == 0x7f) {
                s.append(String.format(Locale.ROOT, "\\u%04x", c));
            } else {
                s.appendCodePoint(c);
            }
        });
        return s.toString();
    }

    /** The keys of {@code allowed} mapped by {@code name}, in order, for {@link #oneOf}. */
    static <T> Map<String, T> byName(Collection<T> values, Function<T, String> name) {
        Map<String, T> m = new LinkedHashMap<>();
        values.forEach(v -> m.put(name.apply(v), v));
        return m;
    }
}

package org.peft4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * How the Python tools that read peft4j's adapter files select modules, written out from their
 * source, independently of peft4j's own matcher ({@code TargetModules}, {@code HuggingFaceTargets}).
 *
 * <p>Hugging Face PEFT at commit 5d602fd, 0.20.1.dev0 ({@code src/peft/tuners/tuners_utils.py},
 * {@code check_target_module_exists}; {@code src/peft/utils/other.py}, {@code
 * match_target_against_key}), for every key of {@code model.named_modules()} of the base model:
 *
 * <ol>
 *   <li>{@code exclude_modules}: a string excludes a key it {@code re.fullmatch}es; a list
 *       excludes a key equal to an entry or ending in {@code "." + entry}.
 *   <li>{@code target_modules}: a string selects a key it {@code re.fullmatch}es (the string
 *       {@code "all-linear"} is a shorthand instead, never written by peft4j); a list selects a key
 *       equal to an entry or ending in {@code "." + entry}. A list entry is never a regex.
 * </ol>
 *
 * <p>{@code layers_to_transform}, {@code layers_pattern} and {@code modules_to_save}, which narrow
 * the list case further, are not used (peft4j writes none of them).
 *
 * <p>PaddleNLP ({@code paddlenlp/peft/lora/lora_model.py}, {@code LoRAModel.get_lora_model}, as
 * of commit 00ce5c3): a string is made a one-element list; a key of {@code named_sublayers()} is
 * selected when some entry {@code re.fullmatch}es it.
 *
 * <p>The regexes are evaluated with {@link java.util.regex}; {@link #assertPythonSafe(String)}
 * first checks that a regex uses only constructs that Python's {@code re} reads the same (a
 * small whitelist, stricter than what peft4j allows).
 */
public final class HfTargetRules {

    private HfTargetRules() {}

    /**
     * Applies Hugging Face PEFT's rules of an {@code adapter_config.json} to module names.
     *
     * @param adapterConfig the parsed {@code adapter_config.json}
     * @param moduleNames every key of the base model's {@code named_modules()}
     * @return the selected names
     */
    public static Set<String> hfSelected(JsonNode adapterConfig, Collection<String> moduleNames) {
        JsonNode targets = adapterConfig.get("target_modules");
        JsonNode excludes = adapterConfig.get("exclude_modules");
        if (targets == null || targets.isNull()) {
            fail("adapter_config.json has no target_modules: " + adapterConfig);
        }
        Set<String> out = new TreeSet<>();
        for (String key : moduleNames) {
            if (excludes != null && !excludes.isNull() && hfMatches(excludes, key)) {
                continue;
            }
            if (hfMatches(targets, key)) {
                out.add(key);
            }
        }
        return out;
    }

    private static boolean hfMatches(JsonNode spec, String key) {
        if (spec.isTextual()) {
            assertTrue(!"all-linear".equalsIgnoreCase(spec.textValue()), "all-linear shorthand");
            return fullMatch(spec.textValue(), key);
        }
        assertTrue(spec.isArray(), "target_modules is a string or a list: " + spec);
        for (JsonNode entry : spec) {
            String name = entry.textValue();
            if (key.equals(name) || key.endsWith("." + name)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Applies PaddleNLP's rule of a {@code lora_config.json} to module names.
     *
     * @param seedConfig the parsed {@code lora_config.json}
     * @param moduleNames every key of the base model's {@code named_sublayers()}
     * @return the selected names
     */
    public static Set<String> paddleSelected(JsonNode seedConfig, Collection<String> moduleNames) {
        JsonNode targets = seedConfig.get("target_modules");
        Set<String> regexes = new LinkedHashSet<>();
        if (targets.isTextual()) {
            regexes.add(targets.textValue());
        } else {
            targets.forEach(e -> regexes.add(e.textValue()));
        }
        Set<String> out = new TreeSet<>();
        for (String key : moduleNames) {
            for (String regex : regexes) {
                if (fullMatch(regex, key)) {
                    out.add(key);
                    break;
                }
            }
        }
        return out;
    }

    private static boolean fullMatch(String regex, String key) {
        assertPythonSafe(regex);
        return Pattern.compile(regex).matcher(key).matches();
    }

    /**
     * Asserts that a regex uses only: letters, digits, {@code _}, {@code -}, {@code .}, {@code *},
     * {@code +}, {@code ?}, {@code |}, {@code ( )}, {@code (?:}, {@code ^ $}, {@code [ ]} with
     * letters, digits and ranges inside, and a backslash before one of {@code . * + ? ( ) [ ] | ^ $
     * \ -}: constructs that Python's {@code re} and Java read alike.
     *
     * @param regex the regex written into a config file
     */
    public static void assertPythonSafe(String regex) {
        String escapable = ".*+?()[]|^$\\-";
        for (int i = 0; i < regex.length(); i++) {
            char c = regex.charAt(i);
            if (c == '\\') {
                assertTrue(
                        i + 1 < regex.length() && escapable.indexOf(regex.charAt(i + 1)) >= 0,
                        "escape at " + i + " of " + regex + " is outside the Python-safe subset");
                i++;
            } else if (c == '(' && i + 1 < regex.length() && regex.charAt(i + 1) == '?') {
                assertTrue(
                        regex.startsWith("(?:", i), "only (?: groups are Python-safe: " + regex);
                i += 2;
            } else {
                assertTrue(
                        Character.isLetterOrDigit(c) && c < 128 || "_-.*+?|()^$[]".indexOf(c) >= 0,
                        "character " + c + " of " + regex + " is outside the Python-safe subset");
            }
        }
    }

    /**
     * Lists the fields of a JSON object.
     *
     * @param json an object
     * @return its field names, sorted
     */
    public static Set<String> fields(JsonNode json) {
        Set<String> out = new TreeSet<>();
        Iterator<String> names = json.fieldNames();
        names.forEachRemaining(out::add);
        return out;
    }
}

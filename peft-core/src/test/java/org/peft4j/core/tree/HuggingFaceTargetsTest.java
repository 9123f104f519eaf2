package org.peft4j.core.tree;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.peft4j.core.testing.HfTargetRules;

import java.util.List;

class HuggingFaceTargetsTest {

    private static final List<String> PATHS =
            List.of(
                    "",
                    "model",
                    "model.layers.0.self_attn.q_proj",
                    "model.layers.0.self_attn.v_proj",
                    "model.layers.1.self_attn.q_proj",
                    "model.layers.1.self_attn.v_proj",
                    "model.norm",
                    "lm_head");

    @Test
    void aRegexListBecomesOneAlternationThatFullMatchesAsTheListDoes() {
        TargetModules list = TargetModules.list(List.of(".*q_proj.*", "v_proj"));
        TargetModules written = HuggingFaceTargets.forAdapterConfig(list);
        assertTrue(written.isSingleRegex());
        assertEquals("(?:.*q_proj.*)|(?:.*\\.)?v_proj", written.getEntries().get(0));
        HfTargetRules.assertPythonSafe(written.getEntries().get(0));
        for (String path : PATHS) {
            assertEquals(list.matches(path), written.matches(path), path);
        }
        TargetModules names = TargetModules.list(List.of("q_proj", "v_proj"));
        assertEquals(names, HuggingFaceTargets.forAdapterConfig(names), "names stay names");
    }

    @Test
    void constructsPythonReadsOtherwiseAreRefusedNamingThem() {
        for (String regex :
                List.of(
                        ".*\\d+.*",
                        ".*\\w",
                        "(?<n>q)_proj",
                        "(?i)q_proj",
                        "q.*+",
                        "[a-z&&[^x]]_proj",
                        "[[a]]",
                        "\\p{L}+",
                        "\\Qq_proj\\E")) {
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> HuggingFaceTargets.checkPythonRegex(regex),
                            regex);
            assertTrue(e.getMessage().contains(regex), e.getMessage());
            assertTrue(e.getMessage().contains("do not read alike"), e.getMessage());
        }
        for (String regex :
                List.of(".*\\.(q_proj|v_proj)", "model\\.layers\\.[0-9]+\\..*", "a{1,3}?b", "^x$")) {
            HuggingFaceTargets.checkPythonRegex(regex);
        }
    }

    @Test
    void escapedPathsAreLiteralInBothLanguages() {
        assertEquals("model\\.layers\\.0\\.a\\-b", HuggingFaceTargets.escape("model.layers.0.a-b"));
        HfTargetRules.assertPythonSafe(HuggingFaceTargets.escape("model.layers.0.a-b"));
    }

    @Test
    void namesAreTheLayersOwnWhenUniqueElseLongerSuffixes() {
        TargetModules any = TargetModules.regex(".*");
        assertEquals(
                List.of("q_proj"),
                HuggingFaceTargets.forAdapterConfig(
                                any,
                                List.of(
                                        "model.layers.0.self_attn.q_proj",
                                        "model.layers.1.self_attn.q_proj"),
                                PATHS)
                        .getEntries());
        assertEquals(
                List.of("layers.1.self_attn.q_proj"),
                HuggingFaceTargets.forAdapterConfig(
                                any, List.of("model.layers.1.self_attn.q_proj"), PATHS)
                        .getEntries(),
                "an index does not start a name");
    }
}

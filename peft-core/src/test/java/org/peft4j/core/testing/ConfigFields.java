package org.peft4j.core.testing;

import java.util.Set;
import java.util.TreeSet;

/**
 * The fields that the Python tools' config classes define, copied by hand from their source, so
 * that a test can check that each file peft4j writes holds only its tool's fields.
 */
public final class ConfigFields {

    /**
     * Hugging Face PEFT at commit 5d602fd, 0.20.1.dev0 ({@code src/peft/config.py}): {@code
     * PeftConfigMixin} ({@code task_type}, {@code peft_type}, {@code auto_mapping}, {@code
     * peft_version}) and {@code PeftConfig} ({@code base_model_name_or_path}, {@code revision},
     * {@code inference_mode}).
     */
    public static final Set<String> HF_PEFT_CONFIG =
            Set.of(
                    "task_type",
                    "peft_type",
                    "auto_mapping",
                    "peft_version",
                    "base_model_name_or_path",
                    "revision",
                    "inference_mode");

    /** Hugging Face PEFT at 5d602fd, {@code src/peft/tuners/lora/config.py}: {@code LoraConfig}. */
    public static final Set<String> HF_LORA_CONFIG =
            union(
                    HF_PEFT_CONFIG,
                    Set.of(
                            "r",
                            "target_modules",
                            "exclude_modules",
                            "lora_alpha",
                            "lora_dropout",
                            "fan_in_fan_out",
                            "bias",
                            "use_rslora",
                            "modules_to_save",
                            "init_lora_weights",
                            "layers_to_transform",
                            "layers_pattern",
                            "rank_pattern",
                            "alpha_pattern",
                            "megatron_config",
                            "megatron_core",
                            "trainable_token_indices",
                            "loftq_config",
                            "eva_config",
                            "corda_config",
                            "lora_ga_config",
                            "use_dora",
                            "velora_config",
                            "alora_invocation_tokens",
                            "use_qalora",
                            "qalora_group_size",
                            "monteclora_config",
                            "layer_replication",
                            "runtime_config",
                            "lora_bias",
                            "target_parameters",
                            "use_bdlora",
                            "arrow_config",
                            "ensure_weight_tying"));

    /**
     * Hugging Face PEFT at commit 5d602fd: {@code PromptLearningConfig} ({@code
     * src/peft/config.py}) and {@code PrefixTuningConfig} ({@code
     * src/peft/tuners/prefix_tuning/config.py}).
     */
    public static final Set<String> HF_PREFIX_TUNING_CONFIG =
            union(
                    HF_PEFT_CONFIG,
                    Set.of(
                            "num_virtual_tokens",
                            "token_dim",
                            "num_transformer_submodules",
                            "num_attention_heads",
                            "num_layers",
                            "modules_to_save",
                            "init_weights",
                            "encoder_hidden_size",
                            "prefix_projection"));

    /**
     * PaddleNLP {@code paddlenlp/peft/lora/lora_config.py} (commit ff94084): {@code LoRAConfig}'s
     * fields, and {@code scaling}, which its {@code save_pretrained} writes beside them.
     */
    public static final Set<String> PADDLE_LORA_CONFIG =
            Set.of(
                    "r",
                    "target_modules",
                    "trainable_modules",
                    "lora_alpha",
                    "lora_dropout",
                    "merge_weights",
                    "trainable_bias",
                    "enable_lora_list",
                    "tensor_parallel_degree",
                    "dtype",
                    "head_dim",
                    "do_qat",
                    "rslora",
                    "pissa",
                    "loraga",
                    "use_mora",
                    "lora_plus_scale",
                    "base_model_name_or_path",
                    "use_quick_lora",
                    "lora_use_mixer",
                    "lorapro",
                    "scaling");

    /**
     * PaddleNLP {@code paddlenlp/peft/tuners/prefix/prefix_config.py} (commit cbdff19): {@code
     * PrefixConfig}'s fields.
     */
    public static final Set<String> PADDLE_PREFIX_CONFIG =
            Set.of(
                    "prefix_dropout",
                    "num_prefix_tokens",
                    "num_attention_heads",
                    "multi_query_group_num",
                    "num_hidden_layers",
                    "hidden_size",
                    "prefix_projection",
                    "prefix_projection_hidden_size",
                    "tensor_parallel_degree",
                    "dtype");

    private ConfigFields() {}

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> out = new TreeSet<>(a);
        out.addAll(b);
        return java.util.Collections.unmodifiableSet(out);
    }
}

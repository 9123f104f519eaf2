/**
 * Prefix tuning (Li and Liang, 2021): learned key/value prefixes fed to every attention layer of a
 * causal language model as past key/values, with only the prefix trained. Under construction: see
 * the project's prefix-tuning issue.
 */
package org.peft4j.prefix;

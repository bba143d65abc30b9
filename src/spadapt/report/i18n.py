"""Every fixed string of the report, per language ("en", "ja"), in one table.

`strings(lang)` returns the table for a language or raises `ReportError` listing the known
ones. Strings are `str.format` templates; the placeholders are named. Text that comes from
results.json (method names, labels, file names, errors) is never put here: the renderers
escape it. Plot strings have an English twin so plots can fall back to English when no
CJK font is installed (see plots.py).
"""

from __future__ import annotations

import functools

from .results import ReportError

LANGUAGES = ("en", "ja")

_EN: dict[str, str] = {
    "title": "PoC report: {dataset} on {model}",
    "h_summary": "Summary",
    "h_table": "Results",
    "h_accuracy_plot": "{Metric} vs stored parameters",
    "h_curves": "Training curves",
    "h_confusion": "Confusion matrix of {name}",
    "h_data": "Data quality",
    "h_search": "The configuration search",
    "h_spread": "Where {name} keeps its values",
    "h_footer": "Run details",
    # Summary sentences.
    "pick_vs_full": "Pick {name}: {acc_vs_full}, stores {size} instead of {full_size} "
                    "({ratio}), trains {speed}.",
    "pick_full": "Pick {name}: no method that stores fewer parameters comes within 1 point "
                 "of its {metric} ({acc}); it stores {size} and trains in {time}.",
    "pick_plain": "Pick {name}: {metric} {acc} ({acc_vs_best}), stores {size} "
                  "({nonzero} non-zero parameters), trains in {time}.",
    "pick_none": "No method finished without error, so there is no recommendation.",
    "acc_below_full": "{points} points below full fine-tuning",
    "acc_above_full": "{points} points above full fine-tuning",
    "acc_equal_full": "the same {metric} as full fine-tuning",
    "acc_best": "the best {metric}",
    "acc_below_best": "{points} points below the best, {best}",
    "ratio_smaller": "1/{ratio}",
    "ratio_larger": "{ratio}× larger",
    "ratio_same": "about the same",
    "faster": "{ratio}× faster",
    "slower": "{ratio}× slower",
    "as_fast": "about as fast",
    "rule": "How we pick: among the methods that ran without error, the one that stores the "
            "fewest non-zero parameters while staying within 1 point (0.01) of the best "
            "{metric}.",
    "rule_base": "The base model as it is (not trained) is shown for reference, never picked.",
    "vs_full_intro": "{Metric} given up against full fine-tuning ({acc}):",
    "vs_full_item": "{name}: {delta}",
    "delta_below": "{points} points lower",
    "delta_above": "{points} points higher",
    "delta_equal": "same",
    "cost_intro": "What each method costs:",
    "cost_item": "{name}: trains in {time} (median step {step}{throughput}), needs {memory} "
                 "of peak memory and stores {size}.",
    "throughput": ", {eps} examples/s",
    "failed_item": "{name} failed: {error}",
    # Table.
    "col_method": "Method",
    "col_accuracy": "{Metric}",
    "col_f1": "Macro-F1",
    "col_trainable": "Trainable params",
    "col_nonzero": "Non-zero params",
    "col_size": "Adapter size",
    "col_time": "Train time",
    "col_step": "Median step",
    "col_memory": "Peak memory",
    "recommended": "recommended",
    "failed": "failed: {error}",
    "table_note": "★ marks the recommended method. Sizes use 1 KB = 1000 bytes.",
    # Plots and sections around them.
    "curves_none": "No training history was recorded.",
    "accuracy_none": "No method finished with stored parameters to plot.",
    "search_ran": "Before the comparison, spadapt tune ran {trials} trials ({completed} "
                  "completed, {pruned} stopped early, {failed} failed) in {time}, each scored "
                  "on {rows} training rows held out of its training; the evaluation rows were "
                  "not used.",
    "search_best": "Best: trial {number}, {settings}: validation accuracy {accuracy} with "
                   "{nonzero} non-zero parameters. It is the method tuned in the results, "
                   "trained and evaluated like the others.",
    "search_best_loss": "Best: trial {number}, {settings}: validation loss {loss} (lowest of "
                        "the trials) with {nonzero} non-zero parameters. It is the method "
                        "tuned in the results, trained and evaluated like the others.",
    "search_none": "No trial completed, so no tuned method was added.",
    # Data quality.
    "rows_used": "Rows used: {train} for training, {eval} for evaluation.",
    "rejected_none": "No rows were rejected.",
    "rejected_count": "Rejected rows: {count}.",
    "rejected_first": "The first {shown} of them:",
    "rejected_no_detail": "The details of the rejected rows were not recorded.",
    "labels": "Labels ({count}): {labels}",
    "labels_none": "Labels: none (task: {task}).",
    # Footer.
    "f_base_model": "Base model",
    "f_task": "Task",
    "f_budget": "Budget",
    "budget_steps": "{name}: every method trains {steps} optimizer steps of {batch} rows on the "
                    "same {train} training rows",
    "budget_epochs": "{name}: every method trains up to {epochs} passes over the same {train} "
                     "training rows, {batch} rows a step{stop}",
    "budget_stop": ", with early stopping (patience {patience})",
    "budget_bf16": "; training and evaluation forwards in bf16 autocast (weights and "
                   "optimizer state stay fp32)",
    "f_seed": "Seed",
    "f_machine": "Machine",
    "f_version": "spadapt version",
    "f_created": "Created",
    "machine": "{cpu}, {threads} threads, GPU: {gpu}, torch {torch}",
    "no_gpu": "none",
    "unknown": "unknown",
    "params_of": "{params} parameters",
    # Generative runs.
    "col_exact": "Exact match",
    "col_rouge": "ROUGE-L",
    "col_loss": "Eval loss",
    "col_ppl": "Perplexity",
    "not_trained": "not trained",
    "metric_option": "Answers are generated greedily for every evaluation prompt and scored "
                     "by {metric}, chosen with --metric.",
    "metric_short_answers": "Answers are generated greedily for every evaluation prompt and "
                            "scored by {metric}: every reference answer is at most 5 words, so "
                            "an answer counts when it matches its reference (ignoring case, "
                            "spacing and trailing punctuation).",
    "metric_long_answers": "Answers are generated greedily for every evaluation prompt and "
                           "scored by {metric} (the longest common word sequence with the "
                           "reference, F1): some reference answers are longer than 5 words.",
    "h_answers": "Answers side by side",
    "answers_intro": "The same {count} evaluation prompts, answered by each method (greedy "
                     "decoding), the base model's answer before adaptation included.",
    "a_prompt": "Prompt",
    "a_reference": "Reference answer",
    "a_method": "Method",
    "a_answer": "Answer",
    "a_empty": "(empty answer)",
    "truncated_none": "No prompt was longer than {max_length} tokens.",
    "truncated": "{count} prompts were longer than {max_length} tokens and were cut from the "
                 "left: their ends, next to the answer, were kept.",
    # Units.
    "u_seconds": "{s} s",
    "u_minutes": "{m} min {s} s",
    "u_hours": "{h} h {m} min",
    "u_ms": "{ms} ms",
    # Plot text (an English twin of each is used when no CJK font is installed).
    "p_accuracy_title": "{Metric} vs non-zero (stored) parameters",
    "p_nonzero_axis": "Non-zero parameters (log scale)",
    "p_accuracy_axis": "{Metric}",
    "p_loss_title": "Training loss",
    "p_eval_title": "Eval {metric}",
    "p_step_axis": "Step",
    "p_loss_axis": "Train loss",
    "p_confusion_title": "Confusion matrix: {name}",
    "p_true_axis": "True label",
    "p_pred_axis": "Predicted label",
    "p_recommended": "recommended",
    "p_search_title": "Search: validation accuracy of each trial",
    "p_search_title_loss": "Search: validation loss of each trial (lower is better)",
    "p_search_loss_axis": "Validation loss",
    "p_spread_title": "Where {name} keeps its values",
    "p_layer_axis": "Layer",
    "p_kept_axis": "Kept values",
    "p_search_best": "best",
}

_JA: dict[str, str] = {
    "title": "PoC レポート: {dataset}（ベースモデル {model}）",
    "h_summary": "まとめ",
    "h_table": "結果一覧",
    "h_accuracy_plot": "{metric}と保存パラメータ数",
    "h_curves": "学習曲線",
    "h_confusion": "{name} の混同行列",
    "h_data": "データ品質",
    "h_search": "構成の探索",
    "h_spread": "{name} の保持値の配置（層・モジュール別）",
    "h_footer": "実行環境",
    "pick_vs_full": "おすすめは {name} です。{metric}はフルファインチューニング比 {acc_vs_full}、"
                    "保存サイズは {full_size} ではなく {size}（{ratio}）、学習は {speed}。",
    "pick_full": "おすすめは {name} です。保存パラメータがより少ない手法で、{metric} {acc} から "
                 "1 ポイント以内に入るものはありませんでした。保存サイズは {size}、学習時間は "
                 "{time} です。",
    "pick_plain": "おすすめは {name} です。{metric} {acc}（{acc_vs_best}）、保存サイズ {size}"
                  "（非ゼロパラメータ {nonzero} 個）、学習時間 {time}。",
    "pick_none": "エラーなく完了した手法がないため、おすすめはありません。",
    "acc_below_full": "−{points} ポイント",
    "acc_above_full": "+{points} ポイント",
    "acc_equal_full": "同等",
    "acc_best": "最高{metric}",
    "acc_below_best": "最高{metric} {best} より {points} ポイント低い",
    "ratio_smaller": "1/{ratio}",
    "ratio_larger": "{ratio} 倍",
    "ratio_same": "ほぼ同じ",
    "faster": "{ratio} 倍速い",
    "slower": "{ratio} 倍遅い",
    "as_fast": "ほぼ同じ速さ",
    "rule": "選び方: エラーなく完了した手法のうち、{metric}が最高値から 1 ポイント（0.01）以内"
            "で、保存する非ゼロパラメータ数が最も少ないものを推奨します。",
    "rule_base": "学習していないベースモデルは比較のために示すだけで、推奨の対象にはしません。",
    "vs_full_intro": "フルファインチューニング（{metric} {acc}）と比べた{metric}の差:",
    "vs_full_item": "{name}: {delta}",
    "delta_below": "{points} ポイント低い",
    "delta_above": "{points} ポイント高い",
    "delta_equal": "同じ",
    "cost_intro": "各手法のコスト:",
    "cost_item": "{name}: 学習時間 {time}（ステップ中央値 {step}{throughput}）、"
                 "ピークメモリ {memory}、保存サイズ {size}。",
    "throughput": "、毎秒 {eps} 件",
    "failed_item": "{name} は失敗しました: {error}",
    "col_method": "手法",
    "col_accuracy": "{metric}",
    "col_f1": "マクロ F1",
    "col_trainable": "学習パラメータ数",
    "col_nonzero": "非ゼロパラメータ数",
    "col_size": "アダプタサイズ",
    "col_time": "学習時間",
    "col_step": "ステップ時間（中央値）",
    "col_memory": "ピークメモリ",
    "recommended": "推奨",
    "failed": "失敗: {error}",
    "table_note": "★ は推奨する手法です。サイズは 1 KB = 1000 バイトで表示しています。",
    "curves_none": "学習履歴は記録されていません。",
    "accuracy_none": "グラフに描ける手法（エラーなく完了し、保存パラメータを持つもの）が"
                     "ありません。",
    "search_ran": "比較の前に spadapt tune が {trials} 回の試行（完了 {completed}、早期打ち切り "
                  "{pruned}、失敗 {failed}）を {time} で実行しました。各試行は学習データから"
                  "取り分けた {rows} 行で評価し、評価データは使っていません。",
    "search_best": "最良: 試行 {number}（{settings}）、検証精度 {accuracy}、非ゼロパラメータ "
                   "{nonzero} 個。結果一覧の tuned がこの構成で、他の手法と同じ条件で学習・"
                   "評価しています。",
    "search_best_loss": "最良: 試行 {number}（{settings}）、検証損失 {loss}（試行中で最小）、"
                        "非ゼロパラメータ {nonzero} 個。結果一覧の tuned がこの構成で、他の手法"
                        "と同じ条件で学習・評価しています。",
    "search_none": "完了した試行がないため、tuned は追加していません。",
    "rows_used": "使用した行数: 学習 {train} 行、評価 {eval} 行。",
    "rejected_none": "除外された行はありません。",
    "rejected_count": "除外された行: {count} 行。",
    "rejected_first": "最初の {shown} 行:",
    "rejected_no_detail": "除外された行の詳細は記録されていません。",
    "labels": "ラベル（{count} 種類）: {labels}",
    "labels_none": "ラベル: なし（タスク: {task}）。",
    "f_base_model": "ベースモデル",
    "f_task": "タスク",
    "f_budget": "予算",
    "budget_steps": "{name}：全手法が同じ学習データ {train} 行で {batch} 行ずつ "
                    "{steps} ステップ学習",
    "budget_epochs": "{name}：全手法が同じ学習データ {train} 行を最大 {epochs} 周、1 ステップ "
                     "{batch} 行{stop}",
    "budget_stop": "（評価 {patience} 回改善なしで停止）",
    "budget_bf16": "。学習と評価の順伝播は bf16 自動混合精度（重みとオプティマイザの状態は "
                   "fp32 のまま）",
    "f_seed": "シード",
    "f_machine": "マシン",
    "f_version": "spadapt バージョン",
    "f_created": "作成日時",
    "machine": "{cpu}、{threads} スレッド、GPU: {gpu}、torch {torch}",
    "no_gpu": "なし",
    "unknown": "不明",
    "params_of": "パラメータ {params} 個",
    "col_exact": "完全一致率",
    "col_rouge": "ROUGE-L",
    "col_loss": "評価損失",
    "col_ppl": "パープレキシティ",
    "not_trained": "学習なし",
    "metric_option": "各評価プロンプトへの回答を貪欲法で生成し、--metric で指定した{metric}で"
                     "採点しています。",
    "metric_short_answers": "各評価プロンプトへの回答を貪欲法で生成し、{metric}で採点しています。"
                            "正解の回答がどれも 5 語以内のため、大文字小文字・空白・末尾の句読点"
                            "を除いて正解と一致した回答を正解とします。",
    "metric_long_answers": "各評価プロンプトへの回答を貪欲法で生成し、{metric}（正解との最長共通"
                           "部分列にもとづく F1）で採点しています。5 語を超える正解があるため"
                           "です。",
    "h_answers": "回答の比較",
    "answers_intro": "同じ {count} 件の評価プロンプトへの各手法の回答（貪欲法）です。適応前の"
                     "ベースモデルの回答も含みます。",
    "a_prompt": "プロンプト",
    "a_reference": "正解の回答",
    "a_method": "手法",
    "a_answer": "回答",
    "a_empty": "（空の回答）",
    "truncated_none": "{max_length} トークンを超えるプロンプトはありませんでした。",
    "truncated": "{count} 件のプロンプトが {max_length} トークンを超えたため、先頭側を切り詰め"
                 "ました（回答に近い末尾は残しています）。",
    "u_seconds": "{s} 秒",
    "u_minutes": "{m} 分 {s} 秒",
    "u_hours": "{h} 時間 {m} 分",
    "u_ms": "{ms} ミリ秒",
    "p_accuracy_title": "{metric}と非ゼロ（保存）パラメータ数",
    "p_nonzero_axis": "非ゼロパラメータ数（対数目盛）",
    "p_accuracy_axis": "{metric}",
    "p_loss_title": "学習損失",
    "p_eval_title": "評価{metric}",
    "p_step_axis": "ステップ",
    "p_loss_axis": "学習損失",
    "p_confusion_title": "混同行列: {name}",
    "p_true_axis": "正解ラベル",
    "p_pred_axis": "予測ラベル",
    "p_recommended": "推奨",
    "p_search_title": "探索: 各試行の検証精度",
    "p_search_title_loss": "探索: 各試行の検証損失（低いほど良い）",
    "p_search_loss_axis": "検証損失",
    "p_spread_title": "{name} の保持値の配置",
    "p_layer_axis": "層",
    "p_kept_axis": "保持している値の数",
    "p_search_best": "最良",
}

_TABLES = {"en": _EN, "ja": _JA}

# What the quality metric is called: (inside a sentence, at its start) per language.
_METRIC_WORDS = {
    "en": {"accuracy": ("accuracy", "Accuracy"), "exact_match": ("exact match", "Exact match"),
           "rouge_l": ("ROUGE-L", "ROUGE-L")},
    "ja": {"accuracy": ("精度", "精度"), "exact_match": ("完全一致率", "完全一致率"),
           "rouge_l": ("ROUGE-L", "ROUGE-L")},
}


def strings(lang: str, metric: str = "accuracy") -> dict[str, str]:
    """The fixed strings of `lang`, the quality `metric`'s name filled in where they say
    "{metric}" (or "{Metric}" at a sentence's start); `ReportError` listing the languages if
    `lang` is unknown."""
    if lang not in _TABLES:
        raise ReportError(f"unknown report language {lang!r}; choose one of: "
                          + ", ".join(f'"{code}"' for code in LANGUAGES))
    return _filled(lang, metric)


@functools.cache
def _filled(lang: str, metric: str) -> dict[str, str]:
    if metric not in _METRIC_WORDS[lang]:
        raise ReportError(f"unknown quality metric {metric!r}; known: "
                          f"{', '.join(_METRIC_WORDS[lang])}")
    word, start = _METRIC_WORDS[lang][metric]
    return {key: value.replace("{metric}", word).replace("{Metric}", start)
            for key, value in _TABLES[lang].items()}

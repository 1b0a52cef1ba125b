"""Rule marker_figures: t-SNE of training and of test samples on the markers, and the z-scored
heatmap of the markers across types (types clustered by their means)."""

from oncoshot.experiments import load_experiment_inputs, select_samples
from oncoshot.io import read_tsv
from oncoshot.marker_plots import marker_heatmap, tsne_plot
from oncoshot.plots import save_figure
from oncoshot.runtime import run


def main(sm, log):
    exp, out = sm.wildcards.experiment, sm.output
    cohorts, samples = load_experiment_inputs(sm.input)
    markers = read_tsv(sm.input.markers, required=("gene_id", "symbol"))
    cols = [next(iter(cohorts.values())).var_names.get_loc(g) for g in markers["gene_id"]]
    symbols = list(markers["symbol"].fillna(markers["gene_id"]))
    for split, png, svg in (("train", out.tsne_train_png, out.tsne_train_svg),
                            ("test", out.tsne_test_png, out.tsne_test_svg)):
        X, y, _ = select_samples(cohorts, samples, exp, split, sm.input.samples)
        fig, _ = tsne_plot(X[:, cols], y, f"{exp}: {split} samples on the {len(cols)} markers", seed=sm.params.seed)
        save_figure(fig, png, svg)
    X, y, _ = select_samples(cohorts, samples, exp, ["train", "validation", "test"], sm.input.samples)
    fig = marker_heatmap(X[:, cols], y, f"{exp}: markers across types (z-score of type means)", genes=symbols)
    save_figure(fig, out.heatmap_png, out.heatmap_svg)
    log.info("%s: figures of %d markers over %d samples", exp, len(cols), len(y))


run(main, snakemake)  # noqa: F821

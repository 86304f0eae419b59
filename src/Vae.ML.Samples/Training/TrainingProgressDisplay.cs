using System.Globalization;
using Spectre.Console;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Training;

/// <summary>
/// Shows training as it happens: on an interactive terminal a Spectre.Console progress bar (epoch and batch count,
/// running loss, elapsed time, ETA) that moves with every batch report, with one log line per finished epoch above it;
/// when output is redirected or the console is not interactive (CI, tests) only the log lines, as plain text.
/// </summary>
internal sealed class TrainingProgressDisplay
{
    private readonly IAnsiConsole console;
    private readonly Action<string> writePlainLine;

    /// <summary>Creates a display.</summary>
    /// <param name="console">Where the live progress bar and its log lines go.</param>
    /// <param name="interactive">Whether to draw the live progress bar (false: plain lines only).</param>
    /// <param name="writePlainLine">Writes one plain line (used when not interactive).</param>
    public TrainingProgressDisplay(IAnsiConsole console, bool interactive, Action<string> writePlainLine)
    {
        this.console = console;
        this.writePlainLine = writePlainLine;
        Interactive = interactive;
    }

    /// <summary>Whether the live progress bar is drawn.</summary>
    public bool Interactive { get; }

    /// <summary>
    /// Runs <paramref name="train"/>, handing it a progress sink that updates the display once per epoch, and
    /// returns its result.
    /// </summary>
    public T Run<T>(int totalEpochs, Func<IProgress<EpochRecord>, T> train) => Run(totalEpochs, (epochs, _) => train(epochs));

    /// <summary>
    /// Runs <paramref name="train"/>, handing it two progress sinks: one per epoch (log line and bar) and one per batch
    /// (moves the bar within the epoch; nothing is printed for it when not interactive). Returns its result.
    /// </summary>
    public T Run<T>(int totalEpochs, Func<IProgress<EpochRecord>, IProgress<VaeBatchProgress>, T> train)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalEpochs, 1);
        if (!Interactive)
        {
            return train(new Sink<EpochRecord>(record => writePlainLine(FormatEpochLine(record, totalEpochs))), new Sink<VaeBatchProgress>(_ => { }));
        }

        T result = default!;
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(),
                new RemainingTimeColumn(),
                new SpinnerColumn())
            .Start(context =>
            {
                ProgressTask task = context.AddTask(Describe(0, totalEpochs, null), maxValue: totalEpochs);
                result = train(
                    new Sink<EpochRecord>(record =>
                    {
                        console.MarkupLine(Markup.Escape(FormatEpochLine(record, totalEpochs)));
                        task.Description = Describe(record.Epoch, totalEpochs, record.TrainLoss);
                        task.Value = record.Epoch;
                    }),
                    new Sink<VaeBatchProgress>(batch =>
                    {
                        task.Description = DescribeBatch(batch);
                        task.Value = BarValue(batch);
                    }));
                task.StopTask();
            });
        return result;
    }

    /// <summary>The log line of one epoch, e.g. <c>epoch  3/20  train 160.123 (BCE 155.0, KL 5.12)  test 158.3 (at mu 157.2)  3.4 s</c>.</summary>
    public static string FormatEpochLine(EpochRecord record, int totalEpochs)
    {
        int width = totalEpochs.ToString(CultureInfo.InvariantCulture).Length;
        string epoch = record.Epoch.ToString(CultureInfo.InvariantCulture).PadLeft(width);
        string line = string.Create(CultureInfo.InvariantCulture,
            $"epoch {epoch}/{totalEpochs}  train {record.TrainLoss:F3} (BCE {record.TrainReconstructionLoss:F3}, KL {record.TrainKlDivergence:F3})");
        if (record.TestLoss is double test)
        {
            line += string.Create(CultureInfo.InvariantCulture, $"  test {test:F3}");
        }

        if (record.TestLossAtMean is double atMean)
        {
            line += string.Create(CultureInfo.InvariantCulture, $" (at mu {atMean:F3})");
        }

        return line + string.Create(CultureInfo.InvariantCulture, $"  {record.Seconds:F1} s");
    }

    /// <summary>Where the bar stands after a batch: finished epochs plus the fraction of the current one.</summary>
    public static double BarValue(VaeBatchProgress batch) => batch.Epoch - 1 + batch.EpochFraction;

    /// <summary>The bar's label during an epoch, e.g. <c>epoch 3/20  batch 120/469  loss 160.12</c>.</summary>
    public static string DescribeBatch(VaeBatchProgress batch) => string.Create(CultureInfo.InvariantCulture,
        $"epoch {batch.Epoch}/{batch.TotalEpochs}  batch {batch.Batch}/{batch.TotalBatches}  loss {batch.TrainLoss:F2}");

    private static string Describe(int epoch, int totalEpochs, double? loss) =>
        loss is double value
            ? string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}/{totalEpochs}  loss {value:F2}")
            : string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}/{totalEpochs}  loss ...");

    /// <summary>Calls back synchronously, on the reporting thread (unlike <see cref="Progress{T}"/>, which posts).</summary>
    private sealed class Sink<TValue>(Action<TValue> report) : IProgress<TValue>
    {
        public void Report(TValue value) => report(value);
    }
}

using Spectre.Console;
using Vae.ML.Samples.Training;

namespace Vae.ML.Tests.Training;

/// <summary>The CLI's progress bar moves with batch reports, not only at the end of each epoch.</summary>
public sealed class TrainingProgressDisplayTests
{
    private static VaeBatchProgress Batch(int epoch, int batch, long rows) => new()
    {
        Epoch = epoch,
        TotalEpochs = 20,
        Batch = batch,
        TotalBatches = 469,
        Rows = rows,
        TotalRows = 60_000,
        TrainLoss = 160.123,
    };

    [Fact]
    public void Bar_stands_at_finished_epochs_plus_the_fraction_of_the_current_one()
    {
        TrainingProgressDisplay.BarValue(Batch(1, 1, 128)).Should().BeApproximately(128 / 60_000.0, 1e-12);
        TrainingProgressDisplay.BarValue(Batch(3, 235, 30_000)).Should().Be(2.5);
        TrainingProgressDisplay.BarValue(Batch(20, 469, 60_000)).Should().Be(20);
    }

    [Fact]
    public void Bar_label_names_epoch_batch_and_running_loss()
        => TrainingProgressDisplay.DescribeBatch(Batch(3, 120, 15_360)).Should().Be("epoch 3/20  batch 120/469  loss 160.12");

    [Fact]
    public void Without_a_terminal_batch_reports_print_nothing_and_epochs_print_their_line()
    {
        var lines = new List<string>();
        var display = new TrainingProgressDisplay(AnsiConsole.Console, interactive: false, lines.Add);
        var result = display.Run(2, (epochs, batches) =>
        {
            batches.Report(Batch(1, 1, 128));
            return 42;
        });
        result.Should().Be(42);
        lines.Should().BeEmpty();
    }
}

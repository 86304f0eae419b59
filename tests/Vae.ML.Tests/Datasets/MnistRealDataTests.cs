using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;
using Xunit.Abstractions;

namespace Vae.ML.Tests.Datasets;

[Collection(MnistCollection.Name)]
public sealed class MnistRealDataTests(MnistDataFixture data, ITestOutputHelper output)
{
    [Fact]
    public void Training_split_has_the_official_size_and_label_counts()
    {
        output.WriteLine($"EnsureFiles took {data.EnsureDuration.TotalSeconds:0.0} s:");
        foreach (string line in data.Log.Lines)
        {
            output.WriteLine(line);
        }

        data.Train.Count.Should().Be(60_000);
        data.Train.Rows.Should().Be(28);
        data.Train.Columns.Should().Be(28);
        data.Train.Pixels.Should().HaveCount(60_000 * 784);
        LabelCounts(data.Train).Should().Equal(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949);
    }

    [Fact]
    public void Test_split_has_the_official_size_and_label_counts()
    {
        data.Test.Count.Should().Be(10_000);
        data.Test.PixelsPerImage.Should().Be(784);
        LabelCounts(data.Test).Should().Equal(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009);
    }

    [Fact]
    public void Training_pixels_are_in_unit_interval_with_the_known_mean()
    {
        double sum = 0;
        float min = float.MaxValue, max = float.MinValue;
        foreach (float pixel in data.Train.Pixels)
        {
            sum += pixel;
            min = Math.Min(min, pixel);
            max = Math.Max(max, pixel);
        }

        (sum / data.Train.Pixels.Length).Should().BeApproximately(0.1307, 1e-3);
        min.Should().Be(0f);
        max.Should().Be(1f);
    }

    [Fact]
    public void Load_returns_a_data_view_with_the_promised_schema_and_rows()
    {
        var mlContext = new MLContext(seed: 0);

        var view = Mnist.Load(mlContext, MnistSplit.Test, data.DataDirectory);

        view.Schema.Select(column => column.Name).Should().Equal(Mnist.LabelColumnName, Mnist.FeaturesColumnName);
        view.Schema[Mnist.LabelColumnName].Type.Should().Be(NumberDataViewType.UInt32);
        view.Schema[Mnist.FeaturesColumnName].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 784));
        view.GetRowCount().Should().Be(10_000);

        var labels = view.GetColumn<uint>(Mnist.LabelColumnName).ToArray();
        labels.Should().Equal(data.Test.Labels.Select(label => (uint)label));
        var first = view.GetColumn<float[]>(Mnist.FeaturesColumnName).First();
        first.Should().Equal(data.Test.GetImage(0).ToArray());
    }

    [Fact]
    public void Data_view_streams_every_training_row_through_the_cursor()
    {
        var view = data.Train.ToDataView(new MLContext(seed: 0));
        using var cursor = view.GetRowCursor(view.Schema);
        var getter = cursor.GetGetter<VBuffer<float>>(view.Schema[Mnist.FeaturesColumnName]);
        VBuffer<float> features = default;
        double sum = 0;
        long rows = 0;
        while (cursor.MoveNext())
        {
            getter(ref features);
            sum += features.GetValues()[400];
            rows++;
        }

        rows.Should().Be(60_000);
        sum.Should().Be(data.Train.Pixels.Where((_, i) => i % 784 == 400).Sum(p => (double)p));
    }

    private static int[] LabelCounts(MnistImages images)
    {
        var counts = new int[10];
        foreach (byte label in images.Labels)
        {
            counts[label]++;
        }

        return counts;
    }
}

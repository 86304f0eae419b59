using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;

namespace Vae.ML.Tests.Datasets;

public sealed class FeatureMatrixDataViewTests
{
    private static readonly float[] Matrix = [0f, 0.5f, 1f, 0.25f, 0.75f, 0.125f]; // 3 rows of 2

    [Fact]
    public void Schema_has_uint_label_and_known_size_vector()
    {
        var view = new FeatureMatrixDataView(Matrix, 2, [4, 5, 6]);

        view.Schema.Select(column => column.Name).Should().Equal("Label", "Features");
        view.Schema["Label"].Type.Should().Be(NumberDataViewType.UInt32);
        var features = view.Schema["Features"].Type.Should().BeOfType<VectorDataViewType>().Subject;
        features.ItemType.Should().Be(NumberDataViewType.Single);
        features.Size.Should().Be(2);
        view.GetRowCount().Should().Be(3);
        view.CanShuffle.Should().BeFalse();
    }

    [Fact]
    public void Cursor_serves_rows_in_order_and_ends_cleanly()
    {
        var view = new FeatureMatrixDataView(Matrix, 2, [4, 5, 6]);
        using var cursor = view.GetRowCursor(view.Schema);
        var featuresGetter = cursor.GetGetter<VBuffer<float>>(view.Schema["Features"]);
        var labelGetter = cursor.GetGetter<uint>(view.Schema["Label"]);
        var idGetter = cursor.GetIdGetter();
        var rows = new List<(uint Label, float[] Features, ulong Id)>();
        VBuffer<float> features = default;
        uint label = 0;
        DataViewRowId id = default;
        while (cursor.MoveNext())
        {
            featuresGetter(ref features);
            labelGetter(ref label);
            idGetter(ref id);
            rows.Add((label, features.DenseValues().ToArray(), id.Low));
        }

        rows.Select(row => row.Label).Should().Equal(4u, 5u, 6u);
        rows.Select(row => row.Id).Should().Equal(0ul, 1ul, 2ul);
        rows[1].Features.Should().Equal(1f, 0.25f);
        rows[2].Features.Should().Equal(0.75f, 0.125f);
        cursor.MoveNext().Should().BeFalse();
        cursor.Position.Should().Be(-1);
        var readAfterEnd = () => featuresGetter(ref features);
        readAfterEnd.Should().Throw<InvalidOperationException>().WithMessage("*MoveNext*");
    }

    [Fact]
    public void Works_with_ml_net_operations()
    {
        var mlContext = new MLContext(seed: 1);
        var view = new FeatureMatrixDataView(Matrix, 2, [4, 5, 6]);

        var rows = mlContext.Data.CreateEnumerable<Row>(view, reuseRowObject: false).ToList();
        rows.Select(row => row.Label).Should().Equal(4u, 5u, 6u);
        rows[0].Features.Should().Equal(0f, 0.5f);

        // A transform over the view: the vector must stay known-size, and values must come through.
        var normalized = mlContext.Transforms.NormalizeMinMax("Scaled", "Features").Fit(view).Transform(view);
        normalized.Schema["Scaled"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 2));
        normalized.GetColumn<float[]>("Scaled").Should().HaveCount(3);
        mlContext.Data.TakeRows(view, 2).GetColumn<uint>("Label").Should().Equal(4u, 5u);
    }

    [Fact]
    public void Inactive_columns_and_wrong_value_types_are_refused()
    {
        var view = new FeatureMatrixDataView(Matrix, 2, [4, 5, 6]);
        using var cursor = view.GetRowCursor([view.Schema["Label"]]);

        cursor.IsColumnActive(view.Schema["Features"]).Should().BeFalse();
        var inactive = () => cursor.GetGetter<VBuffer<float>>(view.Schema["Features"]);
        inactive.Should().Throw<InvalidOperationException>().WithMessage("*'Features'*not requested*");
        var wrongType = () => cursor.GetGetter<float>(view.Schema["Label"]);
        wrongType.Should().Throw<InvalidOperationException>().WithMessage("*'Label'*UInt32*Single*");
    }

    [Fact]
    public void Without_labels_only_features_are_served()
    {
        var view = new FeatureMatrixDataView(Matrix, 3, labels: null, featuresColumnName: "Input");

        view.Schema.Select(column => column.Name).Should().Equal("Input");
        view.GetRowCount().Should().Be(2);
        view.GetColumn<float[]>("Input").Last().Should().Equal(0.25f, 0.75f, 0.125f);
    }

    [Fact]
    public void Mismatched_shapes_are_refused()
    {
        var ragged = () => new FeatureMatrixDataView(Matrix, 4, null);
        ragged.Should().Throw<ArgumentException>().WithMessage("*6 values*multiple of 4*");
        var labels = () => new FeatureMatrixDataView(Matrix, 2, [1, 2]);
        labels.Should().Throw<ArgumentException>().WithMessage("*2 labels for 3 rows*");
    }

    private sealed class Row
    {
        public uint Label { get; set; }

        [VectorType(2)]
        public float[] Features { get; set; } = [];
    }
}

using System.Reflection;
using System.Runtime.CompilerServices;
using FluentAssertions;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;
using Vae.ML.Torch;
using Xunit;

namespace Vae.ML.Tests.Scoring;

/// <summary>
/// What a scoring cursor runs once per row is compiled optimized from its first call: under tiered compilation it ran
/// unoptimized through a process's first short passes, ≈ 4× slower to read its rows (docs/performance.md,
/// "Extraction fixed cost and report memory"). A method that loses the attribute, or a new per-row method without
/// it, brings that back without failing any output test.
/// </summary>
public class ScoringHotPathTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    public static TheoryData<Type, string> PerRowMethods() => new()
    {
        { typeof(VaeCursor), nameof(VaeCursor.MoveNext) },
        { typeof(VaeCursor), "FillBatch" },
        { typeof(VaeCursor), "CurrentIndex" },
        { typeof(VaeCursor), "CurrentRowComputed" },
        { typeof(RowOutputs), nameof(RowOutputs.CaptureInput) },
        { typeof(FeatureColumn), nameof(FeatureColumn.CopyDenseClassified) },
        { typeof(FeatureColumn), "CopyCheckingUnitRange" },
        { typeof(FeatureColumn), "CopyCheckingFinite" },
        { typeof(InputBatch), nameof(InputBatch.Row) },
        { typeof(VaeModel), nameof(VaeModel.InferBatch) },
        { typeof(ScalarColumnBuffer<float>), nameof(ColumnBuffer.Capture) },
        { typeof(VectorColumnBuffer<float>), nameof(ColumnBuffer.Capture) },
    };

    [Theory]
    [MemberData(nameof(PerRowMethods))]
    public void A_per_row_method_is_compiled_optimized_from_its_first_call(Type type, string name)
    {
        var methods = type.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
            .Where(m => m.Name == name).ToList();

        methods.Should().NotBeEmpty($"{type.Name}.{name} is on the scoring cursor's per-row path");
        methods.Should().OnlyContain(m => IsOptimized(m), $"{type.Name}.{name} runs once per scored row");
    }

    [Fact]
    public void The_getters_a_cursor_hands_out_are_compiled_optimized_too()
    {
        var ml = fixture.Context;
        var scored = fixture.Vae.Transform(SyntheticData.Load(ml, 8));
        var schema = scored.Schema;
        using var cursor = scored.GetRowCursor(schema);
        var getters = new Delegate[]
        {
            cursor.GetGetter<VBuffer<float>>(schema[fixture.Vae.LatentColumnName]),
            cursor.GetGetter<VBuffer<float>>(schema[fixture.Vae.ReconstructionColumnName]),
            cursor.GetGetter<float>(schema[fixture.Vae.ScoreColumnName]),
            cursor.GetGetter<VBuffer<float>>(schema["Features"]),
            cursor.GetGetter<uint>(schema["Label"]),
        };

        getters.Should().OnlyContain(g => IsOptimized(g.Method));
        cursor.MoveNext().Should().BeTrue("the getters above must also work");
    }

    private static bool IsOptimized(MethodInfo method)
        => (method.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0;
}

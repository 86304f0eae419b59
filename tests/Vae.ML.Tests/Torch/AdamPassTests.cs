using System.Runtime.Intrinsics;
using FluentAssertions;
using TorchSharp;
using Vae.ML.Samples.Bench;
using Vae.ML.Torch;
using Xunit;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.CpuStep;

/// <summary>
/// The bench's copy of the Adam pass (<see cref="AdamPass"/>, what the memory roofline and the step profile time)
/// against the library's <see cref="FlatAdam"/>: the same bits after several steps, at <c>Vector&lt;float&gt;</c> width
/// and at 512 bits, so the bench times the library's arithmetic and a wider vector would not change a trained model.
/// </summary>
public class AdamPassTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_benchs_Adam_pass_gives_FlatAdams_bits(bool wide)
    {
        if (wide && !Vector512.IsHardwareAccelerated)
        {
            // Nothing to compare where 512-bit vectors are not accelerated: the bench does not time them there.
            return;
        }

        const double learningRate = 1e-3;
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        torch.random.manual_seed(4);

        // 7,007 parameters: not a multiple of any vector width, so both the vector body and the scalar tail run.
        using var layer = torch.nn.Linear(1000, 7);
        using var optimizer = new FlatAdam(layer.named_parameters(), learningRate, new StepPartition(2, minimumWork: 1));
        var parameters = layer.parameters().ToArray();
        var p = parameters.SelectMany(t => t.data<float>().ToArray()).ToArray();
        var (m, v) = (new float[p.Length], new float[p.Length]);
        var random = new Random(9);
        for (var step = 1; step <= 4; step++)
        {
            var g = Enumerable.Range(0, p.Length).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-6, 2)))).ToArray();
            var offset = 0;
            using (torch.no_grad())
            {
                foreach (var parameter in parameters)
                {
                    var count = (int)parameter.numel();
                    using var values = torch.tensor(g.AsSpan(offset, count).ToArray(), parameter.shape);
                    parameter.grad!.copy_(values);
                    offset += count;
                }
            }

            optimizer.Step();
            float stepSize = (float)(-(learningRate / (1 - Math.Pow(0.9, step)))), root = (float)Math.Sqrt(1 - Math.Pow(0.999, step));
            var largest = wide ? AdamPass.Range512(p, g, m, v, 0, p.Length, stepSize, root) : AdamPass.Range(p, g, m, v, 0, p.Length, stepSize, root);
            largest.Should().Be(optimizer.LastLargestGradient);
        }

        var library = parameters.SelectMany(t => t.data<float>().ToArray()).Select(BitConverter.SingleToInt32Bits);
        library.Should().Equal(p.Select(BitConverter.SingleToInt32Bits));
        var state = optimizer.GetState();
        state.SelectMany(s => s.ExpAvg).Select(BitConverter.SingleToInt32Bits).Should().Equal(m.Select(BitConverter.SingleToInt32Bits));
        state.SelectMany(s => s.ExpAvgSq).Select(BitConverter.SingleToInt32Bits).Should().Equal(v.Select(BitConverter.SingleToInt32Bits));
    }
}

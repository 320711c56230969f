// The page loads uPlot's ES module from the same asset directory (dashboard-assets.ts serves
// node_modules/uplot/dist/uPlot.esm.js as uplot.js); its types are the package's own.
import uPlot from 'uplot';
export default uPlot;

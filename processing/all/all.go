// Package all registers every format converter of the processing engine:
// import it for its side effects,
//
//	import _ "github.com/omicsomics/omics-worker/processing/all"
//
// Each format sub-package registers itself from init with
// processing.Register; add new sub-packages here.
package all

import (
	_ "github.com/omicsomics/omics-worker/processing/bed"
	_ "github.com/omicsomics/omics-worker/processing/fastx"
	_ "github.com/omicsomics/omics-worker/processing/gff"
	_ "github.com/omicsomics/omics-worker/processing/mgf"
	_ "github.com/omicsomics/omics-worker/processing/mzml"
	_ "github.com/omicsomics/omics-worker/processing/tabular"
	_ "github.com/omicsomics/omics-worker/processing/vcf"
)

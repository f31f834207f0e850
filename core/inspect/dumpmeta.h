// dumpmeta.h: what the axes of a dump mean, for readers that never saw rwkvscope (h5py +
// xarray, Julia's HDF5.jl, MATLAB): HDF5 dimension scales (H5DS) and units/description
// attributes. Used by the dump writer before SWMR writing starts (docs/dump-format.md).
//   /dims/channel      int64 [C]       c                 scale "channel"
//   /dims/ffn_channel  int64 [F]       f                 scale "ffn_channel" (ffn_k)
//   /dims/token        int64 [V]       token id          scale "token" (logits)
//   /dims/head         int64 [C]       c / head_size     scale "head" (RWKV-5/7, beside channel)
//   /dims/state_{head,value,key} int64 [H*N*N]  (h, i, j) of each state_wkv column
//   /sequences/positions               is the row scale "position" of every tap
// The attachments are the H5DS ones (each dataset's DIMENSION_LIST, each scale's
// REFERENCE_LIST, as the Dimension Scale Specification lays them out), written in bulk: a
// dataset's list when it is described, a scale's list once by rwkv_dumpmeta_finish.
// H5DSattach_scale rewrites the scale's whole list on every attach, O(n^2) in the datasets.
#ifndef RWKV_DUMPMETA_H
#define RWKV_DUMPMETA_H

#include "../compute/forward.h"

#include <hdf5.h>

// The scales of one file while its datasets are described (holds them open).
typedef struct rwkv_dumpmeta rwkv_dumpmeta;

// For the datasets of file, a model of shape cfg. RWKV_OK or RWKV_ERR_NOMEM.
rwkv_status rwkv_dumpmeta_alloc(rwkv_dumpmeta **out, hid_t file, rwkv_config cfg);
void rwkv_dumpmeta_free(rwkv_dumpmeta *dm);
// Makes /sequences/positions (dataset positions of the file) the row scale of the taps
// described after it; 0 or -1.
int rwkv_dumpmeta_rows(rwkv_dumpmeta *dm, hid_t positions);
// Labels the axes of tap dataset dset ("row", and "channel", "ffn_channel", "token" or
// "state_index"), attaches the scales (creating those under /dims on first use) and writes
// its description (and units) attributes. 0 or -1.
int rwkv_dumpmeta_tap(rwkv_dumpmeta *dm, hid_t dset, rwkv_tap tap);
// The same for the [C] vector /params/blocks/<l>/<name>, or a [C, C] matrix (name receptance,
// key, value).
int rwkv_dumpmeta_param(rwkv_dumpmeta *dm, hid_t dset, const char *name);
// Writes every scale's REFERENCE_LIST: the attachments are complete only after it (call it
// once, after the last dataset was described and before SWMR writing starts). 0 or -1.
int rwkv_dumpmeta_finish(rwkv_dumpmeta *dm);
// A group creation list that tracks and indexes creation order, so that readers iterating
// by creation index see the layer groups 0, 1, ..., 10 in numeric order (H5Pclose it).
hid_t rwkv_dumpmeta_ordered_gcpl(void);

#endif

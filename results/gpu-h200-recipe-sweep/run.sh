set -e
export KIT_DATA_DIR=/tmp/kd PYTHONUNBUFFERED=1
mkdir -p $KIT_DATA_DIR/cache
tar xzf .gpu/aclImdb_labelled.tar.gz -C $KIT_DATA_DIR
cp -r .gpu/ag_news_csv $KIT_DATA_DIR/
gunzip -c .gpu/glove.6B.50d.pt.gz > $KIT_DATA_DIR/cache/glove.6B.50d.pt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

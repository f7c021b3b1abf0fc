# The environment, set up as the image was built (echo ... >> /home/atlas/.bashrc).
source /release_setup.sh && source /caf/build/setupAnalysis.sh
